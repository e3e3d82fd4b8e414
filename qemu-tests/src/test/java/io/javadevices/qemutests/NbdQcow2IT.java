package io.javadevices.qemutests;

import io.javadevices.qemutests.harness.Checksums;
import io.javadevices.qemutests.harness.GuestScripts;
import io.javadevices.qemutests.harness.JavaNvmeServer;
import io.javadevices.qemutests.harness.NbdServer;
import io.javadevices.qemutests.harness.QemuGuest;
import io.javadevices.qemutests.harness.QemuImg;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Random;

import static io.javadevices.qemutests.harness.GuestScripts.run;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Issue 14, NBD end to end: a qcow2 image served by {@code qemu-nbd} on the host is namespace 1
 * ({@code nbd+unix:///disk?socket=PATH}). The guest writes it with fio verify at QD32 (the commands are in
 * flight together at the NBD server), then copies onto it, with O_DIRECT and fsync, a pattern the test made on
 * the host and serves as namespace 2 ({@code file:}). Outside any guest, {@code qemu-img compare} then finds the
 * qcow2 image identical to the pattern file.
 *
 * <p>qemu-nbd is SIGKILLed right after the guest's fsync returned, before the guest powers off, so it gets no
 * clean shutdown (no flush and close of the image at exit): what the comparison finds is what the guest's
 * acknowledged, flushed writes left in the image. (qemu-nbd on this host writes a fresh qcow2's L2 updates
 * without waiting for a flush, so the kill does not by itself prove that NBD_CMD_FLUSH arrived; the unit tests
 * against qemu-nbd check the flush mapping.)
 */
class NbdQcow2IT {
    static final long DISK_BYTES = 32L << 20;

    @TempDir
    Path dir;

    @Test
    void fioVerifyOnQemuNbdQcow2AndTheImageMatchesWhatTheGuestWrote() throws Exception {
        Path image = dir.resolve("disk.qcow2");
        Path pattern = dir.resolve("pattern.raw");
        QemuImg.create(image, "qcow2", DISK_BYTES);
        byte[] bytes = new byte[(int) DISK_BYTES];
        new Random(14).nextBytes(bytes);
        Files.write(pattern, bytes);
        String patternSum = Checksums.sha256(pattern, DISK_BYTES);

        String script = GuestScripts.waitForNamespace(1, 30) + GuestScripts.waitForNamespace(2, 30)
                + GuestScripts.report("ns1.bytes", "blockdev --getsize64 $ns1")
                + GuestScripts.nvmeField("vwc", "nvme id-ctrl /dev/nvme0", "vwc")
                + GuestScripts.fio("verify", "--filename=$ns1 --ioengine=libaio --direct=1 --iodepth=32"
                + " --size=16M --rw=randwrite --bsrange=4k-256k --verify=crc32c --do_verify=1 --verify_fatal=1")
                + run("copy", "dd if=$ns2 of=$ns1 bs=1M iflag=direct oflag=direct conv=fsync && sync")
                + GuestScripts.report("sum", "dd if=$ns1 bs=1M iflag=direct 2>/dev/null | sha256sum | cut -c1-64")
                + GuestScripts.checkpoint("copied");
        int nbdStatus;
        String nbdLog;
        try (NbdServer nbd = NbdServer.qemuNbd("qcow2", dir.resolve("nbd.sock"), image, "qcow2", "disk").start();
             JavaNvmeServer server = JavaNvmeServer.start(dir, Map.of("namespaces", nbd.uri() + ",file:" + pattern));
             QemuGuest guest = new QemuGuest.Spec("nbd-qcow2", dir).vfioUser(server.socketName()).script(script).start()) {
            guest.awaitCheckpoint("copied", Duration.ofMinutes(4));
            Map<String, Long> stats = server.stats();
            String why = "\n" + guest.consoleTail(60) + "\nserver stats: " + stats + "\nserver log:\n" + server.logTail()
                    + "\nqemu-nbd:\n" + nbd.logTail();
            assertEquals("yes", guest.result("present.ns1"), why);
            assertEquals("yes", guest.result("present.ns2"), why);
            assertEquals(DISK_BYTES, Long.parseLong(guest.result("ns1.bytes")), "namespace size = the export's size" + why);
            assertEquals("0", guest.result("fio.verify.rc"), "fio verify on the NBD namespace" + why);
            assertEquals("0", guest.result("fio.verify.err"), why);
            assertEquals(16 * 1024, Long.parseLong(guest.result("fio.verify.writekb")), why);
            assertEquals(16 * 1024, Long.parseLong(guest.result("fio.verify.readkb")), "fio read everything back" + why);
            assertEquals("0", guest.result("copy.rc"), "the guest copied the pattern with O_DIRECT and fsync" + why);
            assertEquals(patternSum, guest.result("sum"), "the guest reads the pattern back from the NBD namespace" + why);
            assertEquals(0L, stats.get("io.errors"), why);
            // The file: namespace 2 makes the controller report a volatile write cache (Identify VWC bit 0), so
            // the guest's fsync of namespace 1 is an NVMe Flush there, which the backend passes on as NBD_CMD_FLUSH.
            assertTrue(stats.get("ns1.flushes") > 0, "the guest's fsync reached namespace 1 as a Flush" + why);
            // Deep queues reach the backend: fio's QD32 puts several commands of a queue in flight at once.
            Long inflightMax = stats.get("ns1.inflight.max");
            assertNotNull(inflightMax, "the server reports the namespace's in-flight statistics" + why);
            assertTrue(inflightMax > 1, "commands were in flight together on the NBD namespace" + why);
            System.out.printf("[nbd-qcow2] guest vwc=%s fio write %s KiB; ns1.inflight.max=%d; ns1.flushes=%s ns1.writes.fua=%s%n",
                    guest.result("vwc"), guest.result("fio.verify.writekb"), inflightMax,
                    stats.get("ns1.flushes"), stats.get("ns1.writes.fua"));
            // What the guest's fsync made durable must already be in the image: qemu-nbd gets no chance to flush.
            nbdStatus = nbd.kill9();
            nbdLog = nbd.logTail();
            assertTrue(server.isServing(), "the Java server keeps serving after its NBD server died" + why);
        }
        assertEquals(137, nbdStatus, "qemu-nbd was SIGKILLed\n" + nbdLog);
        QemuImg.Result check = QemuImg.check(image, "qcow2");
        // 0 = clean, 3 = only leaked clusters (harmless: allocated but unreferenced after the kill); 2 = corrupt.
        assertTrue(check.exit() == 0 || check.exit() == 3, "qcow2 metadata consistent after the kill:\n" + check.output());
        QemuImg.Result compare = QemuImg.compare(pattern, "raw", image, "qcow2");
        assertEquals(0, compare.exit(), "qemu-img compare: the qcow2 image holds what the guest wrote:\n" + compare.output());
        assertTrue(compare.output().contains("Images are identical"), compare.output());
    }
}
