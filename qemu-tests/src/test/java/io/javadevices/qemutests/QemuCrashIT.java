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
 * A client crash costs no flushed data and no server: QEMU is killed with SIGKILL in the middle
 * of guest writes. The server stays up, releases the client's DMA mappings and interrupt eventfds, and a
 * new QEMU attaches and reads back every block that the first guest had written and flushed.
 */
class QemuCrashIT {
    @TempDir
    Path dir;

    @Test
    void serverSurvivesQemuKillAndKeepsFlushedData() throws Exception {
        try (JavaNvmeServer server = JavaNvmeServer.start(dir, Map.of("namespaces", "ram:64M"))) {
            Map<String, Long> idle = server.resources();
            String writer = GuestScripts.flushedPatternThenEndlessWrites(8);
            String flushedSum;
            try (QemuGuest guest = new QemuGuest.Spec("crash-1", dir).vfioUser(server.socketName()).script(writer).start()) {
                assertTrue(guest.awaitOutput("@@RESULT flushed=yes", Duration.ofMinutes(3)),
                        "first guest never flushed its pattern:\n" + guest.consoleTail(40) + "\nserver log:\n" + server.logTail());
                long before = server.stats().get("io.writes");
                long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
                while (server.stats().get("io.writes") < before + 200 && System.nanoTime() < deadline) {
                    Thread.sleep(100); // let the endless writer get going
                }
                assertTrue(server.stats().get("io.writes") >= before + 200, "writes in flight when QEMU dies");
                Map<String, Long> busy = server.resources();
                assertTrue(busy.get("dma.maps") > 0 && busy.get("irq.fds") > 0, "client resources in use: " + busy);
                flushedSum = guest.result("sum");
                guest.kill();
            }
            long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
            while (!server.resources().equals(idle) && System.nanoTime() < deadline) {
                Thread.sleep(100);
            }
            assertEquals(idle, server.resources(), "maps and eventfds released after the kill\n" + server.logTail());
            assertTrue(server.isServing(), "server still accepting clients");

            String reader = GuestScripts.waitFor("/dev/nvme0n1", 30)
                    + GuestScripts.checksumOfStart("sum", 8)
                    + GuestScripts.fio("after", "--filename=/dev/nvme0n1 --offset=16M --size=16M --ioengine=libaio"
                    + " --direct=1 --iodepth=16 --rw=randwrite --bsrange=4k-128k --verify=crc32c --do_verify=1 --verify_fatal=1");
            try (QemuGuest guest = new QemuGuest.Spec("crash-2", dir).vfioUser(server.socketName()).script(reader).start()) {
                QemuGuest.Outcome out = guest.awaitExit(Duration.ofMinutes(4));
                String why = "\n" + out.tail() + "\nserver log:\n" + server.logTail();
                assertTrue(out.finished(), "second guest did not finish" + why);
                assertEquals(flushedSum, out.get("sum"), "flushed data survived the crash" + why);
                assertEquals(0, out.getLong("fio.after.rc"), why);
                assertEquals(0, out.getLong("fio.after.err"), why);
            }
        }
    }
}
