package io.javadevices.vfiouser.server;

import io.javadevices.vfiouser.client.TestClient;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.management.ManagementFactory;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The doorbell path (VFIO_USER_REGION_WRITE into a BAR) allocates nothing on the session thread once
 * warmed up: receive, decode into the session's reused access view, device write and reply.
 */
class DoorbellAllocationTest {
    private static final int WARM_UP = 30_000;
    private static final int MEASURED = 20_000;
    private static final int ROUNDS = 5;

    @Test
    void regionWritesAllocateNothingOnTheSessionThread(@TempDir Path dir) throws Exception {
        try (VfioUserServer server = Fixture.start(dir); TestClient c = Fixture.client(server)) {
            c.version();
            byte[] value = {1, 0, 0, 0};
            for (int i = 0; i < WARM_UP; i++) {
                c.regionWrite(0, 0x00, value); // a plain register of the sample device: no side effect
            }
            Thread session = Thread.getAllStackTraces().keySet().stream()
                    .filter(t -> t.getName().startsWith("vfio-user-client ")).findFirst().orElseThrow();
            var mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
            // The best of a few rounds: on a loaded machine C2 may still be compiling the path after the
            // warm-up (an interpreted frame allocates), which says nothing about the compiled path. A path that
            // allocates per write allocates in every round.
            long perWrite = Long.MAX_VALUE;
            for (int round = 0; round < ROUNDS && perWrite >= 16; round++) {
                long before = mx.getThreadAllocatedBytes(session.threadId());
                for (int i = 0; i < MEASURED; i++) {
                    c.regionWrite(0, 0x00, value);
                }
                perWrite = Math.min(perWrite, (mx.getThreadAllocatedBytes(session.threadId()) - before) / MEASURED);
                System.out.println("[alloc] session thread, round " + round + ": " + perWrite + " bytes per REGION_WRITE");
            }
            assertTrue(perWrite < 16, perWrite + " bytes per REGION_WRITE");
        }
    }
}
