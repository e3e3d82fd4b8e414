package io.javadevices.qemutests;

import io.javadevices.qemutests.harness.GuestScripts;
import io.javadevices.qemutests.harness.JavaNvmeServer;
import io.javadevices.qemutests.harness.QemuGuest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * On a {@code file} backend the guest makes an ext4 filesystem, writes files, syncs and powers off; a new
 * server on the same file and a new guest read the same checksums. The first guest's Flush commands and
 * FUA writes (ext4's journal commits) reach the server and are synced.
 */
class PersistenceIT {
    @TempDir
    Path dir;

    @Test
    void ext4FilesSurviveANewServerAndANewGuest() throws Exception {
        Path image = dir.resolve("disk.img");
        String firstBoot = GuestScripts.waitFor("/dev/nvme0n1", 30) + """
                mkfs.ext4 -q -F /dev/nvme0n1 && echo "@@RESULT mkfs=ok"
                mount -t ext4 /dev/nvme0n1 /mnt && echo "@@RESULT mount=ok"
                for i in 1 2 3; do dd if=/dev/urandom of=/mnt/file$i bs=64k count=$((i * 8)) 2>/dev/null; done
                mkdir -p /mnt/dir && echo "hello from the first guest" > /mnt/dir/note.txt
                sync
                echo "@@RESULT sums=$(cd /mnt && sha256sum file1 file2 file3 dir/note.txt | sha256sum | cut -c1-64)"
                umount /mnt && echo "@@RESULT umount=ok"
                """;
        String secondBoot = GuestScripts.waitFor("/dev/nvme0n1", 30) + """
                e2fsck -n /dev/nvme0n1 >/tmp/fsck.out 2>&1; echo "@@RESULT fsck=$?"
                mount -t ext4 /dev/nvme0n1 /mnt && echo "@@RESULT mount=ok"
                echo "@@RESULT sums=$(cd /mnt && sha256sum file1 file2 file3 dir/note.txt | sha256sum | cut -c1-64)"
                echo "@@RESULT note=$(cat /mnt/dir/note.txt)"
                umount /mnt
                """;
        String written;
        try (JavaNvmeServer server = JavaNvmeServer.start(dir, Map.of("namespaces", "file:" + image + ":128M"));
             QemuGuest guest = new QemuGuest.Spec("persist-1", dir).vfioUser(server.socketName()).script(firstBoot).start()) {
            QemuGuest.Outcome out = guest.awaitExit(Duration.ofMinutes(4));
            String why = "\n" + out.tail() + "\nserver log:\n" + server.logTail();
            assertTrue(out.finished(), "first guest did not finish" + why);
            assertEquals("ok", out.get("mkfs"), why);
            assertEquals("ok", out.get("umount"), why);
            written = out.get("sums");
            assertEquals(64, written.length(), why);
            Map<String, Long> stats = server.stats();
            assertTrue(stats.get("io.flushes") > 0, "ext4 and sync sent Flush commands: " + stats);
            // A file: namespace advertises a volatile write cache, so Linux sends jbd2's commit blocks as FUA
            // writes; each is fdatasync'ed before it completes (NVMe 1.4 §6.15, CDW12 bit 30).
            assertTrue(stats.get("ns1.writes.fua") > 0, "ext4's journal commits arrived as FUA writes: " + stats);
            assertTrue(stats.get("ns1.syncs") >= stats.get("ns1.writes.fua"), "every FUA write was synced: " + stats);
            assertEquals(0L, stats.get("ns1.sync.errors"), stats.toString());
        }
        assertEquals(128L << 20, Files.size(image));
        try (JavaNvmeServer server = JavaNvmeServer.start(dir, Map.of("namespaces", "file:" + image));
             QemuGuest guest = new QemuGuest.Spec("persist-2", dir).vfioUser(server.socketName()).script(secondBoot).start()) {
            QemuGuest.Outcome out = guest.awaitExit(Duration.ofMinutes(4));
            String why = "\n" + out.tail() + "\nserver log:\n" + server.logTail();
            assertTrue(out.finished(), "second guest did not finish" + why);
            assertEquals(0, out.getLong("fsck"), "filesystem is clean" + why);
            assertEquals(written, out.get("sums"), "same checksums after a new server and guest" + why);
            assertEquals("hello from the first guest", out.get("note"), why);
        }
    }
}
