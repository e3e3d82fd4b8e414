package io.javadevices.qemutests;

import io.javadevices.qemutests.harness.GuestScripts;
import io.javadevices.qemutests.harness.JavaNvmeServer;
import io.javadevices.qemutests.harness.QemuGuest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code doorbells=polled} against real QEMU: the server reports BAR0's doorbell page as a sparse-mmap
 * area with its memfd, QEMU maps it into the guest, and the stock nvme driver's doorbell writes become
 * plain stores the Java workers poll. Shadow doorbells are off so that every doorbell goes to the page.
 * fio writes and verifies the whole namespace; during fio the server must receive no doorbell message
 * at all (if QEMU had not mapped the page it would warn "Performance may be slow" and the writes would
 * arrive as messages, which this test would see).
 *
 * <p>A handful of doorbell messages do arrive during bring-up: QEMU's vfio-pci disables BAR mmaps while
 * INTx is in use (firmware and the driver's first interrupts, {@code vfio_intx_interrupt} →
 * {@code vfio_mmap_set_enabled(false)}) so accesses trap; the device stores those into the page (the
 * {@code DirectBarMemory} fallback rule), which is why bring-up still works.
 */
class PolledDoorbellsIT {
    @TempDir
    Path dir;

    @Test
    void guestRingsDoorbellsThroughTheMappedPageAndDataVerifies() throws Exception {
        try (JavaNvmeServer server = JavaNvmeServer.start(dir,
                Map.of("namespaces", "ram:32M", "doorbells", "polled", "dbbuf", "off"))) {
            String script = GuestScripts.waitFor("/dev/nvme0n1", 30)
                    + GuestScripts.checkpoint("ready")
                    + GuestScripts.fio("verify", "--filename=/dev/nvme0n1 --ioengine=libaio --direct=1 --iodepth=32"
                    + " --numjobs=2 --size=16M --offset_increment=16M --rw=randwrite --bsrange=4k-256k"
                    + " --verify=crc32c --do_verify=1 --verify_fatal=1")
                    + GuestScripts.checkpoint("fio-done");
            try (QemuGuest guest = new QemuGuest.Spec("polled", dir).vfioUser(server.socketName())
                    .script(script).start()) {
                guest.awaitCheckpoint("ready", Duration.ofMinutes(2));
                Map<String, Long> before = server.stats();
                guest.awaitCheckpoint("fio-done", Duration.ofMinutes(4));
                Map<String, Long> s = server.stats(); // the guest still holds its queues
                QemuGuest.Outcome out = guest.awaitExit(Duration.ofMinutes(1));
                String why = "\n" + out.tail() + "\nserver log:\n" + server.logTail() + "\nbefore fio: " + before
                        + "\nafter fio: " + s;
                assertTrue(out.finished(), "guest did not finish" + why);
                assertEquals(0, out.getLong("fio.verify.rc"), "fio exit code" + why);
                assertEquals(0, out.getLong("fio.verify.err"), "fio errors" + why);
                assertEquals(32 * 1024, out.getLong("fio.verify.writekb"), "fio wrote the whole namespace" + why);
                assertEquals(32 * 1024, out.getLong("fio.verify.readkb"), "fio verified the whole namespace" + why);
                assertEquals(1, s.get("doorbells.polled"), why);
                assertEquals(0, s.get("dbbuf.active"), why);
                long ios = s.get("io.commands") - before.get("io.commands");
                assertTrue(ios > 100, why);
                assertEquals(0, s.get("doorbell.mmio.sq") - before.get("doorbell.mmio.sq"),
                        "QEMU mapped the doorbell page: no SQ doorbell message during fio" + why);
                assertEquals(0, s.get("doorbell.mmio.cq") - before.get("doorbell.mmio.cq"), "no CQ doorbell message" + why);
                assertTrue(s.get("doorbell.polled.sq") - before.get("doorbell.polled.sq") > ios / 4,
                        "tails found by polling the page" + why);
                assertEquals(0, s.get("io.errors"), why);
            }
        }
    }
}
