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
 * A controller reset under load loses no I/O: {@code reset_controller} (Linux {@code nvme_reset_ctrl}) several times while fio writes with verification: the driver
 * re-initialises the controller (disable, enable, queues, Doorbell Buffer Config again) and fio
 * finishes without errors.
 */
class ResetUnderLoadIT {
    @TempDir
    Path dir;

    @Test
    void controllerResetsDuringVerifiedWrites() throws Exception {
        try (JavaNvmeServer server = JavaNvmeServer.start(dir, Map.of("namespaces", "ram:64M"))) {
            String script = GuestScripts.waitFor("/dev/nvme0n1", 30) + """
                    (
                      sleep 2
                      n=0
                      for i in 1 2 3; do
                        if echo 1 > /sys/class/nvme/nvme0/reset_controller; then n=$((n+1)); fi
                        sleep 2
                      done
                      echo "@@RESULT resets=$n"
                    ) &
                    resetter=$!
                    """
                    + GuestScripts.fio("load", "--filename=/dev/nvme0n1 --ioengine=libaio --direct=1 --iodepth=16"
                    + " --rw=randwrite --bsrange=4k-256k --size=48M --loops=8 --verify=crc32c --do_verify=1"
                    + " --verify_fatal=1")
                    + "wait $resetter\n"
                    + GuestScripts.report("state", "cat /sys/class/nvme/nvme0/state")
                    + "dmesg | grep -i nvme | tail -20\n";
            try (QemuGuest guest = new QemuGuest.Spec("reset", dir).vfioUser(server.socketName()).script(script).start()) {
                QemuGuest.Outcome out = guest.awaitExit(Duration.ofMinutes(5));
                String why = "\n" + out.tail() + "\nserver log:\n" + server.logTail();
                assertTrue(out.finished(), "guest did not finish" + why);
                assertEquals(3, out.getLong("resets"), "three resets were requested" + why);
                assertEquals(0, out.getLong("fio.load.rc"), "fio exit code" + why);
                assertEquals(0, out.getLong("fio.load.err"), "fio errors" + why);
                assertEquals("live", out.get("state"), why);
                Map<String, Long> s = server.stats();
                assertTrue(s.get("controller.resets") >= 4, "initial enable + 3 resets reached the controller: " + s);
                assertTrue(s.get("admin.dbbuf.accepted") >= 4, "DBBUF re-sent after every reset: " + s);
            }
        }
    }
}
