package io.javadevices.nvme;

import io.javadevices.nvme.model.GuestErrors;
/**
 * The keys of {@link NvmeController#statistics()}: the contract between the controller, its tests, the
 * CLI's statistics line and the QEMU tests, which read these exact strings. Guest error counters are
 * {@code guest.error.<kind>} ({@link GuestErrors.Kind}) and namespace counters {@code ns<N>.<name>}
 * ({@link Namespace}); per-opcode counts are {@link #adminOpcode} / {@link #ioOpcode}.
 */
public final class NvmeStatistics {
    private NvmeStatistics() {
    }

    /** Admin commands executed, and Doorbell Buffer Config accepted / rejected. */
    public static final String ADMIN_COMMANDS = "admin.commands",
            DBBUF_ACCEPTED = "admin.dbbuf.accepted",
            DBBUF_REJECTED = "admin.dbbuf.rejected";
    /** NVM commands executed, by kind, bytes moved, and those completed with an error status. */
    public static final String IO_COMMANDS = "io.commands",
            IO_READS = "io.reads",
            IO_WRITES = "io.writes",
            IO_FLUSHES = "io.flushes",
            IO_BYTES_READ = "io.bytes.read",
            IO_BYTES_WRITTEN = "io.bytes.written",
            IO_ERRORS = "io.errors";
    /** Doorbell values taken from BAR0 writes, from DBBUF shadow slots and from the polled page. */
    public static final String DOORBELL_MMIO_SQ = "doorbell.mmio.sq",
            DOORBELL_MMIO_CQ = "doorbell.mmio.cq",
            DOORBELL_SHADOW_SQ = "doorbell.shadow.sq",
            DOORBELL_SHADOW_CQ = "doorbell.shadow.cq",
            DOORBELL_POLLED_SQ = "doorbell.polled.sq";
    /** Worker naps (DBBUF EventIdx re-arm delayed), 1 when doorbells=polled, interrupts raised. */
    public static final String WORKER_NAPS = "worker.naps",
            DOORBELLS_POLLED = "doorbells.polled",
            INTERRUPTS = "interrupts";
    /** 1 while Doorbell Buffer Config pages are in use; I/O SQs installed now. */
    public static final String DBBUF_ACTIVE = "dbbuf.active",
            IO_QUEUES = "io.queues";
    /** Controller resets (CC.EN 1→0, FLR, device reset) and Error Information log entries. */
    public static final String CONTROLLER_RESETS = "controller.resets",
            ERRORS_LOGGED = "errors.logged";
    /** Rate-limited guest error log lines written. */
    public static final String GUEST_ERROR_LOG_LINES = GuestErrors.LOG_LINES;

    /** Admin commands with {@code opcode} (e.g. {@code admin.opcode.0x06}, Identify); only those seen are present. */
    public static String adminOpcode(int opcode) {
        return String.format("admin.opcode.0x%02x", opcode);
    }

    /** NVM commands with {@code opcode} (e.g. {@code io.opcode.0x02}, Read); only those seen are present. */
    public static String ioOpcode(int opcode) {
        return String.format("io.opcode.0x%02x", opcode);
    }
}
