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
 * Data written through the whole stack reads back intact: fio writes the whole namespace with crc32c verification headers (random offsets,
 * block sizes 4 KiB – 1 MiB so PRP lists are used, 2 jobs, QD32), then reads everything back and
 * verifies it. Zero errors, and the server's byte counters agree with what fio did.
 */
class DataIntegrityIT {
    @TempDir
    Path dir;

    @Test
    void fioWriteThenVerifyOverTheWholeNamespace() throws Exception {
        try (JavaNvmeServer server = JavaNvmeServer.start(dir, Map.of("namespaces", "ram:64M"))) {
            String script = GuestScripts.waitFor("/dev/nvme0n1", 30)
                    + GuestScripts.fio("verify", "--filename=/dev/nvme0n1 --ioengine=libaio --direct=1 --iodepth=32"
                    + " --numjobs=2 --size=32M --offset_increment=32M --rw=randwrite --bsrange=4k-1m"
                    + " --verify=crc32c --do_verify=1 --verify_fatal=1");
            Map<String, Long> before = server.stats();
            try (QemuGuest guest = new QemuGuest.Spec("integrity", dir).vfioUser(server.socketName())
                    .script(script).start()) {
                QemuGuest.Outcome out = guest.awaitExit(Duration.ofMinutes(6));
                String why = "\n" + out.tail() + "\nserver log:\n" + server.logTail();
                assertTrue(out.finished(), "guest did not finish" + why);
                assertEquals("yes", out.get("present.nvme0n1"), why);
                assertEquals(0, out.getLong("fio.verify.rc"), "fio exit code" + why);
                assertEquals(0, out.getLong("fio.verify.err"), "fio errors" + why);
                long writtenKiB = out.getLong("fio.verify.writekb");
                long readKiB = out.getLong("fio.verify.readkb");
                assertEquals(64 * 1024, writtenKiB, "fio wrote the whole 64 MiB namespace" + why);
                assertEquals(64 * 1024, readKiB, "fio verified the whole namespace" + why);
                Map<String, Long> after = server.stats();
                long serverWritten = after.get("io.bytes.written") - before.get("io.bytes.written");
                long serverRead = after.get("io.bytes.read") - before.get("io.bytes.read");
                assertEquals(writtenKiB * 1024, serverWritten, "server wrote exactly what fio wrote: " + after);
                assertTrue(serverRead >= readKiB * 1024, "server read at least what fio verified: " + after);
                assertEquals(0, after.get("io.errors") - before.get("io.errors"), "no I/O errors at the server");
            }
        }
    }
}
