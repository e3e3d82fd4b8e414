package io.javadevices.qemutests.bench;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;

/**
 * The configurations {@link BackendBenchmark} compares: three kinds of storage, each behind QEMU's own NVMe
 * ({@code hw/nvme}, through QEMU's block layer) and behind the Java NVMe over vfio-user.
 *
 * <ul>
 *   <li>F (file): a raw image on a disk file system. QEMU opens it {@code cache=none,aio=io_uring} (O_DIRECT,
 *       io_uring); the Java device as {@code file:IMG?direct=on}.</li>
 *   <li>N (NBD): {@code qemu-nbd} serving the same kind of raw image ({@code --cache=none --aio=io_uring}) on a
 *       Unix socket; QEMU's {@code nbd} block driver vs the Java device's {@code nbd+unix://} namespace.</li>
 *   <li>L (latency-bound): an {@code nbdkit} memory export behind its {@code delay} filter, so every request
 *       takes at least the delay and IOPS are bounded by requests in flight ÷ delay. L-java-sync is the Java
 *       device executing one command at a time per queue (the design before asynchronous backends).</li>
 * </ul>
 */
enum BackendConfig {
    F_QEMU("F-qemu", Storage.FILE, false),
    F_JAVA("F-java", Storage.FILE, true),
    N_QEMU("N-qemu", Storage.QEMU_NBD, false),
    N_JAVA("N-java", Storage.QEMU_NBD, true),
    L_QEMU("L-qemu", Storage.DELAYED_NBD, false),
    L_JAVA("L-java", Storage.DELAYED_NBD, true),
    L_JAVA_SYNC("L-java-sync", Storage.DELAYED_NBD, true);

    /** Where the blocks live. */
    enum Storage { FILE, QEMU_NBD, DELAYED_NBD }

    /**
     * nbdkit's worker threads per connection (default 16): the delay filter sleeps in them, so they bound the
     * requests in flight; enough that the clients' queues, not the server, set the depth.
     */
    static final int NBDKIT_THREADS = 128;

    private final String id;
    private final Storage storage;
    private final boolean java;

    BackendConfig(String id, Storage storage, boolean java) {
        this.id = id;
        this.storage = storage;
        this.java = java;
    }

    static BackendConfig byId(String id) {
        return Arrays.stream(values()).filter(c -> c.id.equals(id)).findFirst().orElseThrow(() ->
                new IllegalArgumentException("unknown benchmark configuration '" + id + "' in bench.configs (known: "
                        + Arrays.stream(values()).map(BackendConfig::id).collect(Collectors.joining(",")) + ")"));
    }

    String id() {
        return id;
    }

    Storage storage() {
        return storage;
    }

    /** The Java NVMe over vfio-user (else QEMU's built-in NVMe). */
    boolean java() {
        return java;
    }

    /** Name in tables and charts: id and what it is. */
    String label(BackendSettings s) {
        String where = switch (storage) {
            case FILE -> java ? (s.javaFileDirect() ? "file O_DIRECT" : "file, page cache (no O_DIRECT)")
                    : "file O_DIRECT io_uring";
            case QEMU_NBD -> "qemu-nbd";
            case DELAYED_NBD -> "nbdkit +" + s.delay();
        };
        String device = !java ? "QEMU nvme" : this != L_JAVA_SYNC ? "Java NVMe"
                : s.syncOptionsDropped().isEmpty() ? "Java NVMe sync" : "Java NVMe (this build: sync)";
        return id + ": " + device + ", " + where;
    }

    /** The NBD server's command line for {@code socket}, or an empty list for a plain file. */
    List<String> nbdServerCommand(BackendSettings s, Path socket, Path image) {
        return switch (storage) {
            case FILE -> List.of();
            // --persistent: qemu-nbd would exit when its first client (our readiness probe) disconnects.
            case QEMU_NBD -> List.of("qemu-nbd", "--socket=" + socket, "--format=raw", "--cache=none", "--aio=io_uring",
                    "--shared=2", "--persistent", image.toString());
            case DELAYED_NBD -> List.of("nbdkit", "--unix", socket.toString(), "--foreground", "--exit-with-parent",
                    "--threads=" + NBDKIT_THREADS, "--filter=delay", "memory", "size=" + s.sizeBytes(),
                    "rdelay=" + s.delay(), "wdelay=" + s.delay());
        };
    }

    /**
     * QEMU's arguments for its NVMe on this storage, with the paths as the container sees them:
     * {@code guestImage} for a file, {@code guestSocket} for NBD.
     */
    List<String> qemuArgs(String guestImage, String guestSocket) {
        String drive = storage == Storage.FILE
                ? "if=none,id=d0,file=" + guestImage + ",format=raw,cache=none,aio=io_uring"
                : "if=none,id=d0,driver=nbd,server.type=unix,server.path=" + guestSocket + ",cache.direct=on";
        return List.of("-drive", drive, "-device", "nvme,drive=d0,serial=BENCH-" + id);
    }

    /** The Java device's namespace for this storage, with host paths. */
    String javaNamespace(BackendSettings s, Path image, Path socket) {
        return storage == Storage.FILE ? s.javaFileSpec().replace("{img}", image.toString())
                : s.javaNbdSpec().replace("{sock}", socket.toString());
    }
}
