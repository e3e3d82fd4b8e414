package io.javadevices.nvme.admin;

import io.javadevices.nvme.model.AdminIds;
import io.javadevices.nvme.model.GuestErrors;
import io.javadevices.nvme.queue.OpcodeTable;
import io.javadevices.nvme.queue.QueueStats;
import io.javadevices.nvme.queue.Sqe;
import io.javadevices.nvme.spec.Nvme;
import io.javadevices.nvme.spec.Status;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;

import static io.javadevices.nvme.spec.LittleEndian.SHORT;
import static io.javadevices.nvme.spec.LittleEndian.INT;
import static io.javadevices.nvme.spec.LittleEndian.LONG;

/**
 * Get Log Page (02h, NVMe 1.4 §5.14): 01h Error Information, 02h SMART / Health (controller-wide,
 * NSID 0 or FFFFFFFFh), 03h Firmware Slot, 05h Commands Supported and Effects. Other LIDs → Invalid
 * Log Page. Length = (NUMDU:NUMDL + 1) dwords (at most 2^32 dwords, so a long never overflows), from byte
 * offset LPO (CDW13:CDW12, unsigned 64-bit); only the bytes the log has are transferred.
 */
final class LogPageCommand {
    static final int ERROR_INFO = 0x01, SMART = 0x02, FIRMWARE_SLOT = 0x03, COMMAND_EFFECTS = 0x05;

    private final AdminContext context;
    private final AdminCommandDispatcher dispatcher;

    LogPageCommand(AdminContext context, AdminCommandDispatcher dispatcher) {
        this.context = context;
        this.dispatcher = dispatcher;
    }

    int execute(Sqe cmd) {
        int lid = cmd.cdw10() & 0xFF;
        boolean retainEvent = (cmd.cdw10() & 0x8000) != 0;
        long dwords = ((cmd.cdw10() >>> 16) | ((long) (cmd.cdw11() & 0xFFFF) << 16)) + 1;
        long length = dwords * 4;
        long offset = (cmd.cdw12() & 0xFFFF_FFFFL) | ((long) cmd.cdw13() << 32);
        int size = switch (lid) {
            case ERROR_INFO -> 64 * 64;
            case SMART, FIRMWARE_SLOT -> 512;
            case COMMAND_EFFECTS -> 4096;
            default -> -1;
        };
        if (size < 0) {
            return Status.INVALID_LOG_PAGE;
        }
        // LPO is a 64-bit guest value: compare unsigned, so that 2^63 and above are "beyond the log" rather
        // than a negative offset. A dword-misaligned LPO or one at or past the log's end is Invalid Field
        // (NVMe 1.4 §5.14.1; QEMU pci_nvme_err_invalid_log_page_offset).
        if ((offset & 3) != 0 || Long.compareUnsigned(offset, size) >= 0) {
            context.guestErrors().record(GuestErrors.Kind.INVALID_LOG_OFFSET, offset);
            return Status.INVALID_FIELD;
        }
        if (length > context.maxTransferBytes()) {
            return Status.INVALID_FIELD;
        }
        if (lid == SMART && cmd.nsid() != 0 && cmd.nsid() != Nvme.BROADCAST_NSID) {
            return Status.INVALID_FIELD; // LPA bit 0 = 0: no per-namespace SMART
        }
        MemorySegment data = dispatcher.buffer(8192);
        switch (lid) {
            case ERROR_INFO -> context.errorLog().render(data);
            case SMART -> smart(data);
            case FIRMWARE_SLOT -> firmware(data);
            default -> effects(data);
        }
        // Like QEMU: transfer what the log has from LPO on; the rest of the host buffer is left alone.
        long available = Math.min(length, size - offset);
        MemorySegment out = data.asSlice(offset, available);
        int status = dispatcher.toHost(cmd, out, available);
        if (status == Status.SUCCESS && !retainEvent) {
            context.asyncEvents().logPageRead(lid);
        }
        return status;
    }

    private static void put128(MemorySegment d, int offset, long value) {
        d.set(LONG, offset, value);
    }

    /** SMART / Health Information, Figure 196. */
    private void smart(MemorySegment d) {
        QueueStats t = context.queues().totals();
        d.set(ValueLayout.JAVA_BYTE, 0, (byte) 0);           // critical warning
        d.set(SHORT, 1, (short) 296);                         // composite temperature, K
        d.set(ValueLayout.JAVA_BYTE, 3, (byte) 100);          // available spare %
        d.set(ValueLayout.JAVA_BYTE, 4, (byte) 10);           // spare threshold %
        put128(d, 32, (t.bytesRead() / 512 + 999) / 1000);      // data units read (1000 × 512 B)
        put128(d, 48, (t.bytesWritten() / 512 + 999) / 1000);   // data units written
        put128(d, 64, t.reads());                             // host read commands
        put128(d, 80, t.writes());                            // host write commands
        put128(d, 112, 1);                                    // power cycles
        put128(d, 176, context.errorLog().count());        // error log entries
    }

    /** Firmware Slot Information, Figure 197: slot 1 active. */
    private void firmware(MemorySegment d) {
        d.set(ValueLayout.JAVA_BYTE, 0, (byte) 1);
        byte[] fr = AdminIds.FIRMWARE_REVISION.getBytes(StandardCharsets.US_ASCII);
        for (int i = 0; i < 8; i++) {
            d.set(ValueLayout.JAVA_BYTE, 8 + i, i < fr.length ? fr[i] : (byte) ' ');
        }
    }

    /** Commands Supported and Effects, Figure 198: one dword per admin opcode, then per I/O opcode at 1024. */
    private void effects(MemorySegment d) {
        for (OpcodeTable.Entry<?> e : dispatcher.commands().entries()) {
            d.set(INT, 4L * e.opcode(), e.effects());
        }
        for (OpcodeTable.Entry<?> e : context.nvmCommands().entries()) {
            d.set(INT, 1024 + 4L * e.opcode(), e.effects());
        }
    }
}
