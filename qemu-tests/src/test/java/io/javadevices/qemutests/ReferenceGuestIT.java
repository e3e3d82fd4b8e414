package io.javadevices.qemutests;

import io.javadevices.qemutests.harness.GuestScripts;
import io.javadevices.qemutests.harness.QemuGuest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The harness on its own, without the Java server: the image boots the guest kernel under the chosen
 * accelerator, the stock nvme driver binds to QEMU's built-in NVMe on {@code null-co}, and fio's terse
 * output reaches the test. When this fails, the other end-to-end failures are the harness's, not the
 * device's. (The same QEMU device is the benchmark's reference configuration A.)
 */
class ReferenceGuestIT {
    @TempDir
    Path dir;

    @Test
    void guestBootsAndRunsFioOnQemusOwnNvme() throws Exception {
        String script = GuestScripts.header()
                + GuestScripts.waitFor("/dev/nvme0n1", 30)
                + GuestScripts.report("size", "cat /sys/block/nvme0n1/size")
                + GuestScripts.fio("read", "--filename=/dev/nvme0n1 --rw=randread --bs=4k --ioengine=libaio --direct=1"
                + " --iodepth=8 --time_based --runtime=3");
        try (QemuGuest guest = new QemuGuest.Spec("reference", dir).cpus(2)
                .qemuArgs("-drive", "if=none,id=d0,driver=null-co,read-zeroes=on,size=256M",
                        "-device", "nvme,drive=d0,serial=REF0001")
                .script(script).start()) {
            QemuGuest.Outcome out = guest.awaitExit(Duration.ofMinutes(3));
            assertTrue(out.finished(), "guest did not power off:\n" + out.tail());
            assertEquals(0, out.scriptExit(), out.tail());
            assertEquals("2", out.get("cpus"), out.tail());
            assertEquals("yes", out.get("present.nvme0n1"), out.tail());
            assertEquals(256L * 1024 * 1024 / 512, out.getLong("size"), out.tail());
            assertEquals(0, out.getLong("fio.read.rc"), out.tail());
            assertEquals(0, out.getLong("fio.read.err"), out.tail());
            assertTrue(out.getLong("fio.read.iops") > 100, "fio measured reads: " + out.results());
        }
    }
}
