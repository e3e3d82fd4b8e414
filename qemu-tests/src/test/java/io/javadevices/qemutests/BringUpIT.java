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
 * Issue tests 1 and 6: the stock Linux nvme driver binds to the Java controller over vfio-user, sees
 * the identify fields and namespace sizes the server was given, and creates one I/O queue per vCPU.
 */
class BringUpIT {
    @TempDir
    Path dir;

    @Test
    void driverBindsWithIdentifyFieldsNamespaceSizesAndOneQueuePerCpu() throws Exception {
        try (JavaNvmeServer server = JavaNvmeServer.start(dir, Map.of(
                "namespaces", "ram:64M,ram:32M@4096",
                "serial", "JD-E2E-0001",
                "model", "javadevices e2e"))) {
            String script = GuestScripts.header()
                    + GuestScripts.waitFor("/dev/nvme0n1", 30)
                    + GuestScripts.waitFor("/dev/nvme0n2", 10)
                    + GuestScripts.report("sn", "nvme id-ctrl /dev/nvme0 | awk -F': ' '/^sn /{print $2}' | tr -d ' '")
                    + GuestScripts.report("mn", "nvme id-ctrl /dev/nvme0 | awk -F': ' '/^mn /{print $2}' | sed 's/ *$//'")
                    + GuestScripts.report("oacs", "nvme id-ctrl /dev/nvme0 | awk -F': ' '/^oacs /{print $2}' | tr -d ' '")
                    // Linux names disks nvme0n<instance>, and 6.12 scans namespaces in parallel, so nvme0n1 is
                    // not necessarily NSID 1: report each disk under the NSID it says it has.
                    + """
                    for d in nvme0n1 nvme0n2; do
                      n=$(cat /sys/block/$d/nsid)
                      echo "@@RESULT ns$n.nsze=$(nvme id-ns /dev/$d | awk -F': ' '/^nsze /{print $2}' | tr -d ' ')"
                      echo "@@RESULT ns$n.size=$(cat /sys/block/$d/size)"
                      echo "@@RESULT ns$n.lbs=$(cat /sys/block/$d/queue/logical_block_size)"
                    done
                    """
                    + GuestScripts.report("hwqueues", "ls /sys/block/nvme0n1/mq | wc -l")
                    + GuestScripts.report("dd", "dd if=/dev/nvme0n1 of=/dev/null bs=1M count=8 iflag=direct 2>&1 | tail -1")
                    + "dmesg | grep -i nvme\n"
                    + GuestScripts.checkpoint("bound");
            try (QemuGuest guest = new QemuGuest.Spec("bringup", dir).cpus(2).vfioUser(server.socketName())
                    .script(script).start()) {
                guest.awaitCheckpoint("bound", Duration.ofMinutes(4));
                Map<String, Long> stats = server.stats(); // while the driver still holds its queues
                QemuGuest.Outcome out = guest.awaitExit(Duration.ofMinutes(1));
                String why = "\n" + out.tail() + "\nserver log:\n" + server.logTail();
                assertTrue(out.finished(), "guest did not finish" + why);
                assertEquals("yes", out.get("present.nvme0n1"), why);
                assertEquals("yes", out.get("present.nvme0n2"), why);
                assertEquals("JD-E2E-0001", out.get("sn"), why);
                assertEquals("javadevices e2e", out.get("mn"), why);
                assertEquals(0x100, Long.decode(out.get("oacs")) & 0x100, "OACS bit 8 (DBBUF) advertised" + why);
                assertEquals(64L * 1024 * 1024 / 512, Long.decode(out.get("ns1.nsze")), "NSID 1: 64 MiB of 512-byte LBAs" + why);
                assertEquals(64L * 1024 * 1024 / 512, out.getLong("ns1.size"), "sysfs size is in 512-byte sectors" + why);
                assertEquals(512, out.getLong("ns1.lbs"), why);
                assertEquals(32L * 1024 * 1024 / 4096, Long.decode(out.get("ns2.nsze")), "NSID 2: 32 MiB of 4 KiB LBAs" + why);
                assertEquals(32L * 1024 * 1024 / 512, out.getLong("ns2.size"), why);
                assertEquals(4096, out.getLong("ns2.lbs"), why);
                assertEquals(2, out.getLong("hwqueues"), "one I/O queue per vCPU" + why);
                assertEquals(2, stats.get("io.queues"), "server sees 2 I/O queue pairs" + why);
                assertTrue(stats.get("admin.dbbuf.accepted") >= 1, "Doorbell Buffer Config accepted" + why);
                assertTrue(stats.get("io.reads") >= 8, "reads reached the server: " + stats);
            }
        }
    }
}
