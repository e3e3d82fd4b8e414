package io.javadevices.qemutests;

import com.sun.nio.file.ExtendedOpenOption;
import io.javadevices.qemutests.harness.GuestScripts;
import io.javadevices.qemutests.harness.QemuGuest;
import io.javadevices.qemutests.harness.ServerProcess;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static io.javadevices.qemutests.harness.GuestScripts.report;
import static io.javadevices.qemutests.harness.GuestScripts.run;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Issue 14, {@code file:PATH?direct=on} (O_DIRECT: no host page cache between the device and the image) under
 * a crash of the server: the guest makes ext4 on it, writes files and makes them durable in the two ways an
 * application does — {@code sync} (NVMe Flush) and O_DSYNC writes, buffered and O_DIRECT (ext4 commits its
 * journal with FUA writes and flushes) — records their SHA-256, and keeps writing more, unflushed, until the
 * packaged server (a child JVM) is SIGKILLed in the middle. A new server on the same image (its OFD lock died
 * with the old process) and a fresh guest mount the ext4 (the journal replays), find every flushed file with
 * its checksum, and {@code e2fsck -fn} finds the filesystem clean after the replay. Both servers really opened
 * the image with O_DIRECT ({@code /proc/PID/fdinfo} flags).
 */
class DirectFileCrashIT {
    static final List<String> DURABLE = List.of("synced1", "synced2", "synced3", "dsync1", "dsync2");
    private static final Pattern STATS = Pattern.compile("^stats: (\\d+) IOPS");
    /** O_DIRECT in the {@code flags:} line of /proc/PID/fdinfo (octal, x86-64). */
    private static final int O_DIRECT = 040000;

    @TempDir
    Path dir;

    @Test
    void ext4OnAnODirectFileKeepsEverythingFlushedAcrossASigkillOfTheServer() throws Exception {
        requireODirect(dir);
        Path image = dir.resolve("disk.img");
        Path socket = dir.resolve("nvme.sock");
        String sums = "cd /mnt && for f in " + String.join(" ", DURABLE)
                + "; do echo \"@@RESULT sum.$f=$(sha256sum $f | cut -c1-64)\"; done; cd /\n";
        String writer = GuestScripts.waitForNamespace(1, 30)
                + run("mkfs", "mkfs.ext4 -q -F $ns1") + run("mount", "mount -t ext4 $ns1 /mnt") + """
                for i in 1 2 3; do dd if=/dev/urandom of=/mnt/synced$i bs=64k count=$((i * 8)) 2>/dev/null; done
                sync
                """
                // O_DSYNC writes, buffered and direct: each returns once the data and what finds it are durable.
                + run("dsync1", "fio --name=dsync1 --filename=/mnt/dsync1 --rw=write --bs=64k --size=1M --ioengine=psync --sync=dsync --output-format=terse >/dev/null")
                + run("dsync2", "fio --name=dsync2 --filename=/mnt/dsync2 --rw=write --bs=64k --size=1M --ioengine=psync --sync=dsync --direct=1 --output-format=terse >/dev/null")
                + sums
                + "echo \"@@RESULT flushed=yes\"\n"
                // Unflushed load until the server dies: direct writes allocating blocks the journal has not committed.
                + "fio --name=endless --directory=/mnt --size=16M --rw=randwrite --bs=64k --ioengine=libaio --direct=1"
                + " --iodepth=16 --time_based --runtime=600 >/dev/null 2>&1\n";
        String reader = GuestScripts.waitForNamespace(1, 30)
                + run("mount", "mount -t ext4 $ns1 /mnt")
                + "dmesg | grep -i ext4 | tail -5\n"
                + report("files", "ls /mnt | tr '\\n' ' '")
                + sums
                + run("umount", "umount /mnt")
                + run("fsck", "e2fsck -fn $ns1");
        String option = "file:" + image + ":128M?direct=on";

        QemuGuest.Outcome first;
        try (ServerProcess server = ServerProcess.start("direct-1", socket, "--namespace", option, "--stats-interval", "1");
             QemuGuest guest = new QemuGuest.Spec("direct-crash-1", dir).vfioUser(socket.getFileName().toString())
                     .script(writer).start()) {
            assertTrue(guest.awaitOutput("@@RESULT flushed=yes", Duration.ofMinutes(3)),
                    "the first guest made its files durable:\n" + guest.consoleTail(40) + "\nserver output:\n" + server.logTail());
            assertOpenedWithODirect(server, image);
            for (int second = 0; second < 2; second++) { // the unflushed writer is running when the server dies
                int from = server.lineCount();
                assertTrue(server.awaitLine(from, l -> iops(l) > 0, Duration.ofSeconds(60)), server.logTail());
            }
            assertEquals(137, server.kill9(), "server killed by SIGKILL");
            guest.kill();
            first = guest.awaitExit(Duration.ofSeconds(30));
        }
        String why1 = "\n" + first.tail();
        assertEquals(0, first.getLong("mkfs.rc"), why1);
        assertEquals(0, first.getLong("mount.rc"), why1);
        assertEquals(0, first.getLong("dsync1.rc"), "fio O_DSYNC buffered" + why1);
        assertEquals(0, first.getLong("dsync2.rc"), "fio O_DSYNC | O_DIRECT" + why1);
        assertEquals(128L << 20, Files.size(image));

        try (ServerProcess server = ServerProcess.start("direct-2", socket, "--namespace", option);
             QemuGuest guest = new QemuGuest.Spec("direct-crash-2", dir).vfioUser(socket.getFileName().toString())
                     .script(reader).start()) {
            QemuGuest.Outcome out = guest.awaitExit(Duration.ofMinutes(3));
            String why = "\n" + out.tail() + "\nserver output:\n" + server.logTail();
            assertTrue(out.finished(), "second guest finished" + why);
            assertOpenedWithODirect(server, image);
            assertEquals(0, out.getLong("mount.rc"), "ext4 mounts after the crash (journal replay)" + why);
            for (String file : DURABLE) {
                String sum = first.get("sum." + file);
                assertEquals(64, sum.length(), file + why1);
                assertEquals(sum, out.get("sum." + file), file + " survived the server's SIGKILL" + why);
            }
            assertEquals(0, out.getLong("umount.rc"), why);
            assertEquals(0, out.getLong("fsck.rc"), "e2fsck -fn finds the replayed filesystem clean" + why);
        }
    }

    /** The image lives on a file system that supports O_DIRECT (tmpfs does not): else the test cannot mean anything. */
    private static void requireODirect(Path dir) throws IOException {
        Path probe = dir.resolve("odirect.probe");
        try (FileChannel ch = FileChannel.open(probe, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                ExtendedOpenOption.DIRECT)) {
            assertTrue(ch.isOpen());
        } catch (IOException | UnsupportedOperationException e) {
            fail("the temporary directory " + dir + " (" + Files.getFileStore(dir).type() + ") does not support O_DIRECT: "
                    + e + "; point java.io.tmpdir at a disk file system");
        } finally {
            Files.deleteIfExists(probe);
        }
    }

    /** Some fd of the server process points at the image and was opened with O_DIRECT. */
    private static void assertOpenedWithODirect(ServerProcess server, Path image) throws IOException {
        Path fds = Path.of("/proc", Long.toString(server.pid()), "fd");
        StringBuilder seen = new StringBuilder();
        try (var list = Files.list(fds)) {
            for (Path fd : (Iterable<Path>) list::iterator) {
                Path target;
                try {
                    target = Files.readSymbolicLink(fd);
                } catch (IOException gone) {
                    continue;
                }
                if (!target.equals(image.toRealPath())) {
                    continue;
                }
                Path info = Path.of("/proc", Long.toString(server.pid()), "fdinfo", fd.getFileName().toString());
                String flags = Files.readAllLines(info).stream().filter(l -> l.startsWith("flags:"))
                        .map(l -> l.substring(6).trim()).findFirst().orElse("0");
                seen.append(fd.getFileName()).append(" flags ").append(flags).append("; ");
                if ((Integer.parseInt(flags, 8) & O_DIRECT) != 0) {
                    return;
                }
            }
        }
        fail("the server has no O_DIRECT fd on " + image + " (image fds: " + seen + ")\n" + server.logTail());
    }

    private static long iops(String line) {
        Matcher m = STATS.matcher(line);
        return m.find() ? Long.parseLong(m.group(1)) : -1;
    }
}
