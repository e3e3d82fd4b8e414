package io.javadevices.qemutests;

import io.javadevices.qemutests.harness.Checksums;
import io.javadevices.qemutests.harness.GuestScripts;
import io.javadevices.qemutests.harness.JavaNvmeServer;
import io.javadevices.qemutests.harness.NbdServer;
import io.javadevices.qemutests.harness.QemuGuest;
import io.javadevices.qemutests.harness.QemuImg;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

import static io.javadevices.qemutests.harness.GuestScripts.report;
import static io.javadevices.qemutests.harness.GuestScripts.run;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Issue 14, a lost NBD connection: the namespace is the default export of a {@code qemu-nbd} on the host
 * ({@code nbd+unix://?socket=PATH}, a raw image). While the guest runs fio at QD16 on it, the test SIGKILLs
 * qemu-nbd. The guest must see I/O errors (fio stops with EIO, the kernel logs them: the device fails the
 * commands with the retryable Namespace Not Ready status, which Linux retries a few times and then fails) —
 * never a hang: no command times out, the controller is not reset. QEMU and the Java server keep running, and
 * I/O tried while qemu-nbd is down fails too. Once qemu-nbd runs again on the same socket, the device's
 * background reconnection finds it and a direct write + read of known data succeeds, within a bounded time,
 * without restarting QEMU or the server; the controller stayed live throughout and the data is in the image.
 */
class NbdReconnectIT {
    static final long DISK_BYTES = 64L << 20;
    /** Where the known data goes, in MiB: outside the region fio uses. */
    static final int KNOWN_AT_MIB = 8, KNOWN_MIB = 4;

    @TempDir
    Path dir;

    @Test
    void killedNbdServerGivesTheGuestErrorsAndIoResumesAfterItsRestart() throws Exception {
        Path image = dir.resolve("disk.raw");
        QemuImg.create(image, "raw", DISK_BYTES);
        String known = "dd if=/tmp/known of=$ns1 bs=1M seek=" + KNOWN_AT_MIB + " oflag=direct conv=fsync 2>/dev/null"
                + " && dd if=$ns1 of=/tmp/back bs=1M skip=" + KNOWN_AT_MIB + " count=" + KNOWN_MIB + " iflag=direct 2>/dev/null"
                + " && cmp -s /tmp/known /tmp/back";
        String state = "cat /sys/class/nvme/nvme0/state";
        String listed = "nvme list 2>/dev/null | grep -c ${ns1}";
        String script = GuestScripts.waitForNamespace(1, 30)
                + "dd if=/dev/urandom of=/tmp/known bs=1M count=" + KNOWN_MIB + " 2>/dev/null\n"
                + run("before", known)
                + "echo \"@@CHECKPOINT load\"\n"
                // Until the NBD server dies under it: fio stops at the first I/O error.
                + GuestScripts.fio("load", "--filename=$ns1 --ioengine=libaio --direct=1 --iodepth=16 --rw=randrw"
                + " --bs=4k --offset=16M --size=32M --time_based --runtime=60")
                // blk_print_req_error: "I/O error, dev nvme0n1", "critical medium error, dev nvme0n1", ...
                + report("errors.dmesg", "dmesg | grep -c \"error, dev ${ns1##*/}\"")
                + "dmesg | grep -i nvme | tail -12\n"
                + report("state.down", state) + report("listed.down", listed)
                + "echo \"@@CHECKPOINT errors-seen\"\n"
                // Known new data, written and read back directly until it works (at most 90 s).
                + "dd if=/dev/urandom of=/tmp/known bs=1M count=" + KNOWN_MIB + " 2>/dev/null\n"
                + report("known.sum", "sha256sum /tmp/known | cut -c1-64") + """
                tries=0; recovered=no
                while [ $recovered = no ] && [ $tries -lt 180 ]; do
                  if %s; then recovered=yes; else
                    tries=$((tries+1))
                    if [ $tries = 1 ]; then echo "@@RESULT down.retry=failed"; fi
                    sleep 0.5
                  fi
                done
                echo "@@RESULT recovered=$recovered"
                echo "@@RESULT recovery.tries=$tries"
                """.formatted(known)
                + report("state.after", state) + report("listed.after", listed)
                + GuestScripts.fio("after", "--filename=$ns1 --ioengine=libaio --direct=1 --iodepth=16 --rw=randwrite"
                + " --bsrange=4k-128k --offset=16M --size=8M --verify=crc32c --do_verify=1 --verify_fatal=1")
                // nvme_log_error: "(sct 0x0 / sc 0x82)" is Namespace Not Ready (NVMe 1.4 Figure 128).
                + report("notready.dmesg", "dmesg | grep -c 'sct 0x0 / sc 0x82'")
                + "echo \"statuses: $(dmesg | grep -o 'sct 0x. / sc 0x..' | sort | uniq -c | tr '\\n' ';')\"\n"
                + report("timeouts", "dmesg | grep -ci 'timeout'") + report("resets", "dmesg | grep -ci 'resetting controller'")
                + "dmesg | grep -i nvme | tail -8\n"
                // The guest is idle now: the test reads the in-flight count while the queues still exist.
                + "echo \"@@CHECKPOINT idle\"\nsleep 2\n";
        try (NbdServer nbd = NbdServer.qemuNbd("raw", dir.resolve("nbd.sock"), image, "raw", "").start();
             JavaNvmeServer server = JavaNvmeServer.start(dir, Map.of("namespaces", nbd.uri()));
             QemuGuest guest = new QemuGuest.Spec("nbd-reconnect", dir).vfioUser(server.socketName()).script(script).start()) {
            guest.awaitCheckpoint("load", Duration.ofMinutes(3));
            assertEquals("0", guest.result("before.rc"), "direct write + read back before the kill\n" + guest.consoleTail(30));
            long commands = server.stats().get("io.commands");
            assertTrue(awaitCommands(server, commands + 500, Duration.ofSeconds(60)),
                    "fio's I/O reached the server\n" + guest.consoleTail(30) + "\n" + server.logTail());
            int nbdStatus = nbd.kill9();
            assertEquals(137, nbdStatus, nbd.logTail());
            System.out.println("[nbd-reconnect] qemu-nbd SIGKILLed mid-I/O");

            guest.awaitCheckpoint("errors-seen", Duration.ofSeconds(90));
            assertTrue(guest.awaitOutput("@@RESULT down.retry=failed", Duration.ofSeconds(60)),
                    "I/O while qemu-nbd is down fails\n" + guest.consoleTail(40));
            Map<String, Long> down = server.stats();
            String why = "\n" + guest.consoleTail(60) + "\nserver stats: " + down + "\nserver log:\n" + server.logTail()
                    + "\nqemu-nbd:\n" + nbd.logTail();
            assertNotEquals("0", guest.result("fio.load.rc"), "fio stopped with an I/O error" + why);
            assertTrue(Long.parseLong(guest.result("errors.dmesg")) > 0, "the guest kernel logged I/O errors" + why);
            assertEquals("live", guest.result("state.down"), "the controller stays live while the backend is down" + why);
            assertEquals("1", guest.result("listed.down"), "nvme list still shows the namespace" + why);
            assertTrue(guest.isRunning(), "QEMU keeps running" + why);
            assertTrue(server.isServing(), "the Java server keeps serving" + why);
            assertTrue(down.get("io.errors") > 0, "the server counted the failed commands" + why);

            int mark = guest.console().length();
            nbd.start();
            System.out.println("[nbd-reconnect] qemu-nbd restarted on the same socket");
            assertTrue(guest.awaitOutput("@@RESULT recovered=", Duration.ofSeconds(120)), "recovery loop ended" + why);
            guest.awaitCheckpoint("idle", Duration.ofMinutes(2));
            Map<String, Long> idle = server.stats();
            QemuGuest.Outcome out = guest.awaitExit(Duration.ofMinutes(2));
            why = "\n" + out.tail() + "\nserver log:\n" + server.logTail() + "\nqemu-nbd:\n" + nbd.logTail();
            assertTrue(out.finished(), "guest finished" + why);
            assertEquals("yes", out.get("recovered"), "direct I/O of known data works again after the restart" + why);
            // The line starts at or after where the console had got to when qemu-nbd was started again.
            assertTrue(guest.console().indexOf("@@RESULT recovered=yes") >= mark, "recovered only after qemu-nbd restarted" + why);
            assertEquals("live", out.get("state.after"), why);
            assertEquals("1", out.get("listed.after"), why);
            assertEquals(0, out.getLong("fio.after.rc"), "fio verify after the reconnection" + why);
            assertEquals(0, out.getLong("fio.after.err"), why);
            assertEquals(0, out.getLong("timeouts"), "no command timed out in the guest: errors, not a hang" + why);
            assertEquals(0, out.getLong("resets"), "the controller was never reset" + why);
            assertTrue(out.getLong("notready.dmesg") > 0, "commands failed with Namespace Not Ready while qemu-nbd was down" + why);
            assertTrue(server.isServing(), why);
            // Every command failed at the connection loss was completed: no in-flight slot leaked.
            assertNotNull(idle.get("ns1.inflight"), "the server reports the namespace's in-flight statistics" + why);
            assertEquals(0L, idle.get("ns1.inflight"), "nothing left in flight on the idle namespace: " + idle + why);
            System.out.printf("[nbd-reconnect] recovered after %s failed tries of 0.5 s; server io.errors=%d%n",
                    out.get("recovery.tries"), down.get("io.errors"));
            String knownSum = out.get("known.sum");
            assertEquals(0, nbd.stop(), "qemu-nbd exits cleanly on SIGTERM" + why);
            assertEquals(knownSum, Checksums.sha256(image, (long) KNOWN_AT_MIB << 20, (long) KNOWN_MIB << 20),
                    "the data written after the reconnection is in the image on the host" + why);
        }
    }

    private static boolean awaitCommands(JavaNvmeServer server, long atLeast, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            if (server.stats().get("io.commands") >= atLeast) {
                return true;
            }
            Thread.sleep(100);
        }
        return false;
    }
}
