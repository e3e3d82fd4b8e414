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
 * Reliability issue, backend fault: a namespace on {@code /dev/full} (every write fails with ENOSPC, reads
 * return zeroes). Proves that a backend I/O error reaches the guest as an NVMe error status (Write Fault,
 * with an Error Information log entry that {@code nvme error-log} shows and a kernel I/O error line), not as
 * a crash or a hang: the guest's direct write fails, a direct read afterwards succeeds, and the server is
 * still serving with its {@code io.errors} counter above zero.
 */
class BackendErrorIT {
    @TempDir
    Path dir;

    @Test
    void writeErrorOfTheBackendIsAnNvmeErrorStatus() throws Exception {
        Path full = Path.of("/dev/full");
        assertTrue(Files.isWritable(full), "/dev/full is needed on the host");
        String script = GuestScripts.waitFor("/dev/nvme0n1", 30) + """
                dd if=/dev/urandom of=/tmp/block bs=4k count=1 2>/dev/null
                dd if=/tmp/block of=/dev/nvme0n1 bs=4k count=1 oflag=direct 2>/tmp/dd.err
                echo "@@RESULT write.rc=$?"
                cat /tmp/dd.err
                nvme error-log /dev/nvme0 -e 1 > /tmp/elog 2>&1
                echo "@@RESULT errorlog.rc=$?"
                cat /tmp/elog
                echo "@@RESULT errorlog.count=$(awk -F: '/error_count/ {gsub(/[ \\t]/, "", $2); print $2; exit}' /tmp/elog)"
                echo "@@RESULT errorlog.status=$(awk -F: '/status_field/ {gsub(/[ \\t]/, "", $2); print $2; exit}' /tmp/elog | cut -d'(' -f1)"
                echo "@@RESULT errorlog.nsid=$(awk -F: '/^nsid/ {gsub(/[ \\t]/, "", $2); print $2; exit}' /tmp/elog)"
                dmesg | grep -i nvme | grep -i error | tail -5
                echo "@@RESULT dmesg.errors=$(dmesg | grep -i nvme0n1 | grep -ci error)"
                dd if=/dev/nvme0n1 of=/tmp/back bs=4k count=16 iflag=direct 2>/dev/null
                echo "@@RESULT read.rc=$?"
                echo "@@RESULT read.sum=$(sha256sum /tmp/back | cut -c1-64)"
                echo "@@RESULT zero.sum=$(dd if=/dev/zero bs=4k count=16 2>/dev/null | sha256sum | cut -c1-64)"
                """ + GuestScripts.checkpoint("after-io");
        try (JavaNvmeServer server = JavaNvmeServer.start(dir, Map.of("namespaces", "file:" + full + ":64M"));
             QemuGuest guest = new QemuGuest.Spec("backend-error", dir).vfioUser(server.socketName()).script(script).start()) {
            guest.awaitCheckpoint("after-io", Duration.ofMinutes(3));
            Map<String, Long> stats = server.stats();
            assertTrue(server.isServing(), "server still serving after the backend errors");
            QemuGuest.Outcome out = guest.awaitExit(Duration.ofMinutes(2));
            String why = "\n" + out.tail() + "\nserver stats: " + stats + "\nserver log:\n" + server.logTail();
            assertTrue(out.finished(), "guest did not finish" + why);
            assertNotEquals(0L, out.getLong("write.rc"), "the direct write to /dev/full failed in the guest" + why);
            assertEquals(0L, out.getLong("errorlog.rc"), "nvme error-log ran" + why);
            assertTrue(out.getLong("errorlog.count") > 0, "the Error Information log has an entry" + why);
            // Status field without the phase bit: SCT 2 (media) SC 80h = Write Fault, possibly with DNR/More bits.
            assertEquals(0x280, Long.decode(out.get("errorlog.status")) & 0x7FF, "Write Fault in the error log" + why);
            assertEquals(1L, Long.decode(out.get("errorlog.nsid")), why);
            assertTrue(out.getLong("dmesg.errors") > 0, "the kernel logged the I/O error" + why);
            assertEquals(0L, out.getLong("read.rc"), "a read after the failed write succeeds" + why);
            assertEquals(out.get("zero.sum"), out.get("read.sum"), "/dev/full reads zeroes" + why);
            assertTrue(stats.get("io.errors") > 0, "io.errors counted" + why);
            assertTrue(stats.get("errors.logged") > 0, why);
            assertTrue(stats.get("io.reads") > 0, why);
            assertTrue(server.isServing(), "server still serving after the guest left" + why);
            System.out.printf("[backend-error] io.errors=%d errors.logged=%d io.reads=%d, guest error-log count=%s status=%s%n",
                    stats.get("io.errors"), stats.get("errors.logged"), stats.get("io.reads"),
                    out.get("errorlog.count"), out.get("errorlog.status"));
        }
    }
}
