package io.javadevices.qemutests;

import io.javadevices.qemutests.harness.GuestScripts;
import io.javadevices.qemutests.harness.QemuGuest;
import io.javadevices.qemutests.harness.ServerProcess;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Reliability issue, server crash: the packaged server ({@code java -jar nvme-server.jar}, a child process)
 * is killed with SIGKILL while a guest is writing to a {@code file} namespace. Proves that data the guest
 * wrote with O_DIRECT and flushed (fsync → NVMe Flush) before the crash is in the file on the host, byte for
 * byte (checked in Java, without any guest), and that a new server started on the same file and the same
 * socket path (replacing the stale socket file the killed server left) serves it to a new guest, which reads
 * the same checksum. Two guest sessions on the restarted server leave no fds behind (no guest-RAM memfd, no
 * client socket, no growth from one session to the next; only the parked per-vector eventfd slots remain), and
 * the {@code --max-*} limit options of the CLI are accepted with values a real QEMU client stays within.
 */
class ServerCrashIT {
    private static final int FLUSHED_MIB = 8;
    private static final Pattern STATS = Pattern.compile("^stats: (\\d+) IOPS");

    @TempDir
    Path dir;

    @Test
    void flushedDataSurvivesSigkillOfTheServer() throws Exception {
        Path image = dir.resolve("disk.img");
        Path socket = dir.resolve("nvme.sock");
        String writer = GuestScripts.flushedPatternThenEndlessWrites(FLUSHED_MIB);
        String flushedSum;
        long t0 = System.nanoTime();
        try (ServerProcess server = ServerProcess.start("crash-1", socket, "--namespace", "file:" + image + ":64M",
                "--stats-interval", "1");
             QemuGuest guest = new QemuGuest.Spec("server-crash-1", dir).vfioUser(socket.getFileName().toString())
                     .script(writer).start()) {
            assertTrue(guest.awaitOutput("@@RESULT flushed=yes", Duration.ofMinutes(3)),
                    "first guest never flushed its pattern:\n" + guest.consoleTail(40) + "\nserver output:\n" + server.logTail());
            flushedSum = guest.result("sum");
            assertEquals("0", guest.result("write.rc"), "dd with conv=fsync succeeded");
            assertEquals(64, flushedSum.length());
            // Writes in flight: wait for two stats lines (printed every second) after the marker with I/Os in them.
            for (int second = 0; second < 2; second++) {
                int from = server.lineCount();
                assertTrue(server.awaitLine(from, l -> iops(l) > 0, Duration.ofSeconds(60)),
                        "the endless writer is running when the server dies\n" + server.logTail());
            }
            int status = server.kill9();
            System.out.printf("[server-crash] server pid %d SIGKILLed %.1f s after start, exit status %d%n",
                    server.pid(), (System.nanoTime() - t0) / 1e9, status);
            assertEquals(137, status, "killed by SIGKILL");
            guest.kill();
        }
        assertTrue(Files.exists(socket), "a SIGKILLed server leaves its socket file behind");
        assertEquals(64L << 20, Files.size(image));
        assertEquals(flushedSum, sha256(image, FLUSHED_MIB << 20),
                "the flushed region of the file on the host equals what the guest wrote");

        String reader = GuestScripts.waitFor("/dev/nvme0n1", 30)
                + GuestScripts.checksumOfStart("sum", FLUSHED_MIB)
                + GuestScripts.fio("after", "--filename=/dev/nvme0n1 --offset=16M --size=16M --ioengine=libaio"
                + " --direct=1 --iodepth=16 --rw=randwrite --bsrange=4k-128k --verify=crc32c --do_verify=1 --verify_fatal=1");
        // The restarted server also runs with tighter client limits than the defaults, which QEMU stays within
        // (a 1 GiB guest needs about 10 DMA maps; messages are at most 1 MiB + header).
        try (ServerProcess server = ServerProcess.start("crash-2", socket, "--namespace", "file:" + image,
                "--max-dma-maps", "64", "--max-mapped-bytes", "2G", "--max-message-bytes", "2M")) {
            FdSnapshot idle = FdSnapshot.of(server);
            QemuGuest.Outcome out = session(server, "server-crash-2", reader);
            String why = "\n" + out.tail() + "\nserver output:\n" + server.logTail();
            assertEquals(flushedSum, out.get("sum"), "the restarted server serves the flushed data" + why);
            assertEquals(0, out.getLong("fio.after.rc"), why);
            assertEquals(0, out.getLong("fio.after.err"), why);
            FdSnapshot afterFirst = FdSnapshot.of(server);
            // A second session on the same server: it must leave exactly as many fds as the first one did.
            String again = GuestScripts.waitFor("/dev/nvme0n1", 30) + GuestScripts.checksumOfStart("sum", FLUSHED_MIB);
            QemuGuest.Outcome out2 = session(server, "server-crash-3", again);
            assertEquals(flushedSum, out2.get("sum"), "\n" + out2.tail());
            FdSnapshot afterSecond = FdSnapshot.of(server);
            System.out.printf("[server-crash] restarted server open fds: %d idle %s, %d after guest 2 %s, %d after guest 3 %s%n",
                    idle.total, idle.kinds, afterFirst.total, afterFirst.kinds, afterSecond.total, afterSecond.kinds);
            String fds = "\nidle " + idle.kinds + "\nafter guest 2 " + afterFirst.kinds + "\nafter guest 3 " + afterSecond.kinds
                    + "\n" + server.logTail();
            assertEquals(afterFirst.total, afterSecond.total, "no fd growth from one guest session to the next" + fds);
            assertEquals(0, afterSecond.kinds.getOrDefault("memfd", 0L), "no guest RAM (memfd) still open" + fds);
            assertEquals(idle.kinds.getOrDefault("socket", 0L), afterSecond.kinds.getOrDefault("socket", 0L),
                    "no client socket still open" + fds);
            // What may remain: one parked eventfd slot per MSI-X vector ever used (EventfdInterrupts; at most
            // queues + 1 = 5 with the default options), and /dev/random + /dev/urandom, which the JDK opens
            // once, lazily, for SecureRandom.
            long extraEventfds = afterSecond.kinds.getOrDefault("eventfd", 0L) - idle.kinds.getOrDefault("eventfd", 0L);
            long extraRandom = afterSecond.random() - idle.random();
            assertTrue(extraEventfds >= 0 && extraEventfds <= 5, "parked eventfd slots bounded by the vectors" + fds);
            assertTrue(extraRandom <= 2, fds);
            assertEquals(afterSecond.total - idle.total, extraEventfds + extraRandom, "nothing else added" + fds);
            assertTrue(server.isAlive(), "server still running\n" + server.logTail());
        }
    }

    /** Boots a guest against the running server, waits for it to finish and for the server to clean up. */
    private QemuGuest.Outcome session(ServerProcess server, String name, String script) throws Exception {
        int from = server.lineCount();
        try (QemuGuest guest = new QemuGuest.Spec(name, dir).vfioUser("nvme.sock").script(script).start()) {
            QemuGuest.Outcome out = guest.awaitExit(Duration.ofMinutes(4));
            assertTrue(out.finished(), name + " did not finish\n" + out.tail() + "\nserver output:\n" + server.logTail());
            assertTrue(server.awaitLine(from, l -> l.contains("disconnected"), Duration.ofSeconds(20)),
                    "server cleaned up after " + name + "\n" + server.logTail());
            return out;
        }
    }

    /** The server's open fds: the total and counts by kind (socket, memfd, eventfd, file PATH, pipe, ...). */
    private record FdSnapshot(long total, java.util.Map<String, Long> kinds) {
        long random() {
            return kinds.getOrDefault("file /dev/random", 0L) + kinds.getOrDefault("file /dev/urandom", 0L);
        }

        static FdSnapshot of(ServerProcess server) throws Exception {
            Thread.sleep(500); // the session thread logs "disconnected" just before its last close()s
            java.util.Map<String, Long> kinds = new java.util.TreeMap<>();
            long total = 0;
            try (var fds = Files.list(Path.of("/proc", Long.toString(server.pid()), "fd"))) {
                for (Path fd : (Iterable<Path>) fds::iterator) {
                    String target;
                    try {
                        target = Files.readSymbolicLink(fd).toString();
                    } catch (java.io.IOException gone) {
                        continue;
                    }
                    String kind = target.startsWith("socket:") ? "socket" : target.startsWith("/memfd:") ? "memfd"
                            : target.contains("[eventfd]") ? "eventfd" : target.startsWith("/") ? "file " + target : target;
                    kinds.merge(kind, 1L, Long::sum);
                    total++;
                }
            }
            return new FdSnapshot(total, kinds);
        }
    }

    private static long iops(String line) {
        Matcher m = STATS.matcher(line);
        return m.find() ? Long.parseLong(m.group(1)) : -1;
    }

    /** SHA-256 of the first {@code bytes} bytes of a file, as lowercase hex (what {@code sha256sum} prints). */
    private static String sha256(Path file, long bytes) throws Exception {
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        byte[] buffer = new byte[1 << 20];
        try (InputStream in = Files.newInputStream(file)) {
            long left = bytes;
            while (left > 0) {
                int n = in.read(buffer, 0, (int) Math.min(buffer.length, left));
                if (n < 0) {
                    throw new AssertionError("file shorter than " + bytes + " bytes");
                }
                sha.update(buffer, 0, n);
                left -= n;
            }
        }
        return HexFormat.of().formatHex(sha.digest());
    }
}
