package io.javadevices.qemutests;

import io.javadevices.qemutests.harness.GuestScripts;
import io.javadevices.qemutests.harness.JavaNvmeServer;
import io.javadevices.qemutests.harness.QemuGuest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

import static io.javadevices.qemutests.harness.GuestScripts.nvmeField;
import static io.javadevices.qemutests.harness.GuestScripts.report;
import static io.javadevices.qemutests.harness.GuestScripts.run;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The NVM command set from the guest with nvme-cli 2.13 and the stock driver: Compare (match and mismatch),
 * Write Uncorrectable then a failing read, Get LBA Status reporting it, a write that heals it; Verify; Copy
 * read back; Write Zeroes with Deallocate and Dataset Management reading zeroes; SGLs (the driver told to use
 * them for every request) under fio verify; the feature walk and log pages nvme-cli reads; and Identify
 * advertising exactly that (ONCS, OACS, SGLS, OCFS).
 */
class NvmCommandSetIT {
    @TempDir
    Path dir;

    /** Reads LBA {@code lba} (512-byte blocks) of nvme0n1, count blocks, with O_DIRECT: its SHA-256. */
    private static String sumOf(String key, int lba, int count) {
        return report(key, "dd if=/dev/nvme0n1 bs=512 skip=" + lba + " count=" + count + " iflag=direct 2>/dev/null | sha256sum | cut -c1-64");
    }

    @Test
    void compareUncorrectableVerifyCopyZeroesAndSglsFromTheGuest() throws Exception {
        String dev = "/dev/nvme0n1";
        String idCtrl = "nvme id-ctrl /dev/nvme0";
        String script = GuestScripts.waitFor(dev, 30)
                + nvmeField("oncs", idCtrl, "oncs") + nvmeField("oacs", idCtrl, "oacs")
                + nvmeField("sgls", idCtrl, "sgls") + nvmeField("ocfs", idCtrl, "ocfs")
                + nvmeField("mssrl", "nvme id-ns " + dev, "mssrl") + nvmeField("mcl", "nvme id-ns " + dev, "mcl")
                + nvmeField("msrc", "nvme id-ns " + dev, "msrc") + nvmeField("dlfeat", "nvme id-ns " + dev, "dlfeat")
                // Compare: 8 blocks of random data at LBA 0, compared with themselves and with other data.
                + "dd if=/dev/urandom of=/tmp/a bs=4096 count=1 2>/dev/null; dd if=/dev/urandom of=/tmp/b bs=4096 count=1 2>/dev/null\n"
                + "dd if=/tmp/a of=" + dev + " bs=4096 count=1 oflag=direct 2>/dev/null\n"
                + run("cmp.match", "nvme compare " + dev + " --start-block=0 --block-count=7 --data-size=4096 --data=/tmp/a")
                + run("cmp.mismatch", "nvme compare " + dev + " --start-block=0 --block-count=7 --data-size=4096 --data=/tmp/b")
                + report("cmp.mismatch.status", "grep -ci 'compare' /tmp/cmp.mismatch.out")
                // Write Uncorrectable on LBAs 64-65; a read fails; Get LBA Status reports them; a write heals them.
                + run("uncor", "nvme write-uncor " + dev + " --start-block=64 --block-count=1")
                + run("uncor.read", "dd if=" + dev + " of=/dev/null bs=512 skip=64 count=1 iflag=direct")
                + run("verify.bad", "nvme verify " + dev + " --start-block=60 --block-count=7")
                + run("lbastatus", "nvme get-lba-status /dev/nvme0 --namespace-id=1 --start-lba=0 --max-dw=1024 --action=0x10 --range-len=0")
                + report("lbastatus.has64", "grep -c 'DSLBA: 0x0*40, NLB: 0x0*2,' /tmp/lbastatus.out")
                + "dd if=/dev/zero of=" + dev + " bs=512 seek=64 count=2 oflag=direct 2>/dev/null\n"
                + run("uncor.healed", "dd if=" + dev + " of=/dev/null bs=512 skip=64 count=2 iflag=direct")
                + run("verify.good", "nvme verify " + dev + " --start-block=0 --block-count=127")
                // Copy two source ranges (LBAs 0-7 and 8-15 after writing them) to LBA 1000.
                + "dd if=/dev/urandom of=" + dev + " bs=512 seek=8 count=8 oflag=direct 2>/dev/null\n"
                + run("copy", "nvme copy " + dev + " --sdlba=1000 --slbs=0,8 --blocks=7,7")
                + sumOf("copy.src", 0, 16) + sumOf("copy.dst", 1000, 16)
                // Write Zeroes with Deallocate, and DSM deallocate: both read back zeroes.
                + run("wz", "nvme write-zeroes " + dev + " --start-block=1000 --block-count=7 --deac")
                + report("wz.nonzero", "dd if=" + dev + " bs=512 skip=1000 count=8 iflag=direct 2>/dev/null | tr -d '\\000' | wc -c")
                + run("dsm", "nvme dsm " + dev + " --ad --slbs=1008 --blocks=8")
                + report("dsm.nonzero", "dd if=" + dev + " bs=512 skip=1008 count=8 iflag=direct 2>/dev/null | tr -d '\\000' | wc -c")
                // Features and logs nvme-cli reads.
                + run("feat.timestamp", "nvme get-feature /dev/nvme0 --feature-id=0x0e")
                + run("feat.hbs", "nvme get-feature /dev/nvme0 --feature-id=0x16 --data-len=512")
                + run("feat.apst", "nvme get-feature /dev/nvme0 --feature-id=0x0c")
                // The all-features walk (FID 01h-FFh) skips Invalid Field answers and stops at any other error;
                // its exit code is the last FID's (FFh: Invalid Field), so count what it printed instead.
                + run("feat.all", "nvme get-feature /dev/nvme0")
                + report("feat.all.listed", "grep -c '^get-feature:0x' /tmp/feat.all.out")
                + report("feat.all.errors", "grep -c 'NVMe status' /tmp/feat.all.out")
                + run("logs", "nvme supported-log-pages /dev/nvme0")
                + run("changedns", "nvme changed-ns-list-log /dev/nvme0")
                // --csi=0: without it nvme-cli maps BAR0 to read CAP.CSS, which the guest kernel forbids
                // (CONFIG_IO_STRICT_DEVMEM) for a device its driver owns, whatever the device.
                + run("effects", "nvme effects-log /dev/nvme0 --csi=0")
                + report("effects.copy", "grep -c 'IOCS25 *\\[Copy' /tmp/effects.out")
                + run("smart", "nvme smart-log /dev/nvme0")
                // SGLs: with sgl_threshold at 4 KiB the driver maps every multi-page I/O with SGL descriptors.
                + "echo 4096 > /sys/module/nvme/parameters/sgl_threshold\n"
                + GuestScripts.checkpoint("before-sgl")
                + GuestScripts.fio("sgl", "--filename=" + dev + " --ioengine=libaio --direct=1 --iodepth=16 --offset=8M"
                + " --size=32M --rw=randwrite --bsrange=4k-512k --verify=crc32c --do_verify=1 --verify_fatal=1")
                + GuestScripts.checkpoint("after-sgl");
        try (JavaNvmeServer server = JavaNvmeServer.start(dir, Map.of("namespaces", "ram:64M"));
             QemuGuest guest = new QemuGuest.Spec("nvm-cmds", dir).vfioUser(server.socketName()).script(script).start()) {
            guest.awaitCheckpoint("before-sgl", Duration.ofMinutes(4));
            long sglBefore = server.stats().getOrDefault("io.sgl", -1L);
            guest.awaitCheckpoint("after-sgl", Duration.ofMinutes(4));
            long sglAfter = server.stats().getOrDefault("io.sgl", -1L);
            QemuGuest.Outcome out = guest.awaitExit(Duration.ofMinutes(2));
            String why = "\n" + out.tail() + "\nserver log:\n" + server.logTail() + "\nstats: " + server.stats();
            assertTrue(out.finished(), "guest did not finish" + why);
            long oncs = Long.decode(out.get("oncs"));
            // Compare 0, Write Uncorrectable 1, DSM 2, Write Zeroes 3, Save/Select 4, Timestamp 6, Verify 7, Copy 8.
            assertEquals(0b1_1101_1111, oncs, "ONCS: exactly what is implemented" + why);
            assertEquals(1 << 9, Long.decode(out.get("oacs")) & (1 << 9), "OACS bit 9 Get LBA Status" + why);
            assertEquals(1, Long.decode(out.get("sgls")) & 3, "SGLS: SGLs supported" + why);
            assertEquals(1, Long.decode(out.get("ocfs")) & 1, "OCFS: copy format 0" + why);
            assertTrue(out.getLong("mssrl") > 0 && out.getLong("mcl") >= out.getLong("mssrl"), why);
            assertEquals(0x09, Long.decode(out.get("dlfeat")) & 0x0F, "DLFEAT: deallocated blocks read zeroes, WZ may deallocate" + why);

            assertEquals(0, out.getLong("cmp.match.rc"), "compare of equal data succeeds" + why);
            assertNotEquals(0, out.getLong("cmp.mismatch.rc"), "compare of different data fails" + why);
            assertTrue(out.getLong("cmp.mismatch.status") > 0, "with Compare Failure" + why);
            assertEquals(0, out.getLong("uncor.rc"), why);
            assertNotEquals(0, out.getLong("uncor.read.rc"), "a read of an uncorrectable block fails" + why);
            assertNotEquals(0, out.getLong("verify.bad.rc"), "verify over an uncorrectable block fails" + why);
            assertEquals(0, out.getLong("lbastatus.rc"), why);
            assertTrue(out.getLong("lbastatus.has64") > 0, "Get LBA Status lists LBA 64" + why);
            assertEquals(0, out.getLong("uncor.healed.rc"), "a write healed the blocks" + why);
            assertEquals(0, out.getLong("verify.good.rc"), why);
            assertEquals(0, out.getLong("copy.rc"), why);
            assertEquals(out.get("copy.src"), out.get("copy.dst"), "the copy reads back as its sources" + why);
            assertEquals(0, out.getLong("wz.rc"), why);
            assertEquals(0, out.getLong("wz.nonzero"), why);
            assertEquals(0, out.getLong("dsm.rc"), why);
            assertEquals(0, out.getLong("dsm.nonzero"), why);
            assertEquals(0, out.getLong("feat.timestamp.rc"), why);
            assertEquals(0, out.getLong("feat.hbs.rc"), why);
            assertNotEquals(0, out.getLong("feat.apst.rc"), "APST is not supported (APSTA = 0)" + why);
            // 01, 02, 04, 05, 07, 08, 09, 0A, 0B, 0E, 16, 80h (no 06h: a ram namespace has no write cache).
            assertEquals(12, out.getLong("feat.all.listed"), "every supported feature answered the walk" + why);
            assertEquals(0, out.getLong("feat.all.errors"), "and nothing but Invalid Field for the rest" + why);
            assertEquals(0, out.getLong("logs.rc"), why);
            assertEquals(0, out.getLong("changedns.rc"), why);
            assertEquals(0, out.getLong("effects.rc"), why);
            assertEquals(1, out.getLong("effects.copy"), "the effects log lists Copy" + why);
            assertEquals(0, out.getLong("smart.rc"), why);
            assertEquals(0, out.getLong("fio.sgl.rc"), why);
            assertEquals(0, out.getLong("fio.sgl.err"), why);
            assertTrue(sglBefore >= 0 && sglAfter > sglBefore, "Linux mapped fio's I/O with SGLs: " + sglBefore + " → " + sglAfter + why);
        }
    }
}
