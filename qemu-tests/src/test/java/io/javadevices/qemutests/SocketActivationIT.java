package io.javadevices.qemutests;

import io.javadevices.qemutests.harness.GuestScripts;
import io.javadevices.qemutests.harness.QemuGuest;
import io.javadevices.qemutests.harness.SocketActivatedServer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Issue 15, socket activation: the server runs on a socket it inherits, the way a systemd {@code .socket} unit
 * hands it over ({@code systemd-socket-activate}, {@code LISTEN_PID}/{@code LISTEN_FDS}). A guest writes to a
 * {@code file:} namespace (flushed and not) and keeps writing; the server is stopped with SIGTERM under that load
 * and exits 0 (client disconnected, in-flight commands finished or failed, the backend flushed), and a new server
 * is started on the same inherited socket with {@code --socket-fd 3} (a unit's restart), while the socket file
 * never disappears nor changes (checked every 20 ms for the whole test) and connections made in between wait in
 * the listen queue. A new guest (QEMU does not reconnect) reads back both regions the first guest wrote.
 */
class SocketActivationIT {
    private static final int MIB = 8;

    @TempDir
    Path dir;

    @Test
    void restartOnTheSameInheritedSocketKeepsTheDataAndThePath() throws Exception {
        Path image = dir.resolve("disk.img");
        Path socket = dir.resolve("nvme.sock");
        String writer = GuestScripts.waitFor("/dev/nvme0n1", 30) + """
                dd if=/dev/urandom of=/tmp/a bs=1M count=%1$d 2>/dev/null
                dd if=/dev/urandom of=/tmp/b bs=1M count=%1$d 2>/dev/null
                dd if=/tmp/a of=/dev/nvme0n1 bs=1M oflag=direct conv=fsync 2>/dev/null; echo "@@RESULT a.rc=$?"
                dd if=/tmp/b of=/dev/nvme0n1 bs=1M seek=16 oflag=direct 2>/dev/null; echo "@@RESULT b.rc=$?"
                echo "@@RESULT a=$(sha256sum /tmp/a | cut -c1-64)"
                echo "@@RESULT b=$(sha256sum /tmp/b | cut -c1-64)"
                echo "@@RESULT written=yes"
                fio --name=load --filename=/dev/nvme0n1 --offset=32M --size=32M --rw=randwrite --bs=64k \\
                    --ioengine=libaio --direct=1 --iodepth=16 --time_based --runtime=600 >/dev/null 2>&1
                """.formatted(MIB);
        String reader = GuestScripts.waitFor("/dev/nvme0n1", 30)
                + GuestScripts.checksumOfStart("a", MIB)
                + GuestScripts.report("b", "dd if=/dev/nvme0n1 bs=1M skip=16 count=" + MIB
                + " iflag=direct 2>/dev/null | sha256sum | cut -c1-64");
        long t0 = System.nanoTime();
        try (SocketActivatedServer activated = SocketActivatedServer.listen(socket,
                "--namespace", "file:" + image + ":64M", "--stats-interval", "1")) {
            Object inode = inode(socket);
            AtomicReference<String> pathProblem = new AtomicReference<>();
            Thread watcher = Thread.ofPlatform().daemon().name("socket-path-watcher").start(() -> {
                while (!Thread.currentThread().isInterrupted()) {
                    try {
                        if (!inode.equals(inode(socket))) {
                            pathProblem.compareAndSet(null, "the socket file was replaced");
                        }
                        Thread.sleep(20);
                    } catch (InterruptedException e) {
                        return;
                    } catch (Exception e) {
                        pathProblem.compareAndSet(null, "the socket file disappeared: " + e);
                    }
                }
            });
            try {
                activated.knock(); // the connection systemd-socket-activate waits for
                int from = activated.lineCount();
                long first = activated.startServer(true);
                assertTrue(activated.linesFrom(from).stream().anyMatch(l -> l.contains("socket activation: LISTEN_FDS=1")),
                        "the server found its socket through LISTEN_PID/LISTEN_FDS\n" + activated.logTail());
                String a;
                String b;
                try (QemuGuest guest = new QemuGuest.Spec("activated-1", dir).vfioUser(socket.getFileName().toString())
                        .script(writer).start()) {
                    assertTrue(guest.awaitOutput("@@RESULT written=yes", Duration.ofMinutes(3)),
                            "first guest never wrote\n" + guest.consoleTail(40) + "\n" + activated.logTail());
                    assertEquals("0", guest.result("a.rc"));
                    assertEquals("0", guest.result("b.rc"));
                    a = guest.result("a");
                    b = guest.result("b");
                    int before = activated.lineCount();
                    assertTrue(awaitStatsWithIo(activated, before), "the load runs when the server is stopped\n"
                            + activated.logTail());
                    int stopFrom = activated.lineCount();
                    int status = activated.stopServer(first);
                    List<String> stopLines = activated.linesFrom(stopFrom);
                    System.out.printf("[socket-activation] first server (pid %d) exit %d after %.1f s%n", first, status,
                            (System.nanoTime() - t0) / 1e9);
                    assertEquals(0, status, "clean shutdown under load: every device flushed\n" + activated.logTail());
                    assertTrue(stopLines.stream().anyMatch(l -> l.contains("every device flushed")), stopLines.toString());
                    guest.kill();
                }
                assertTrue(Files.exists(socket, LinkOption.NOFOLLOW_LINKS), "no server runs, the socket is still there");
                activated.knock(); // accepted into the listen queue while no server runs
                long second = activated.startServer(false);
                try (QemuGuest guest = new QemuGuest.Spec("activated-2", dir).vfioUser(socket.getFileName().toString())
                        .script(reader).start()) {
                    QemuGuest.Outcome out = guest.awaitExit(Duration.ofMinutes(3));
                    String why = "\n" + out.tail() + "\n" + activated.logTail();
                    assertTrue(out.finished(), "second guest did not finish" + why);
                    assertEquals(a, out.get("a"), "the flushed region survives the restart" + why);
                    assertEquals(b, out.get("b"), "the region written without a flush survives the clean stop" + why);
                }
                assertEquals(0, activated.stopServer(second), activated.logTail());
                assertTrue(Files.exists(socket, LinkOption.NOFOLLOW_LINKS), "left to its owner");
            } finally {
                watcher.interrupt();
                watcher.join();
            }
            assertNull(pathProblem.get(), "the socket path never disappears nor changes");
            System.out.printf("[socket-activation] done in %.1f s%n", (System.nanoTime() - t0) / 1e9);
        }
    }

    private static Object inode(Path socket) throws Exception {
        return Files.readAttributes(socket, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).fileKey();
    }

    /** Waits for a stats line (printed every second) reporting I/O, i.e. the guest's load is running. */
    private static boolean awaitStatsWithIo(SocketActivatedServer s, int from) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (System.nanoTime() < deadline) {
            for (String l : s.linesFrom(from)) {
                if (l.matches("^stats: [1-9]\\d* IOPS.*")) {
                    return true;
                }
            }
            Thread.sleep(200);
        }
        return false;
    }
}
