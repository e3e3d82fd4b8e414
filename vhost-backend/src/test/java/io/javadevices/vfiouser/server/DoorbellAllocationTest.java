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
            long before = mx.getThreadAllocatedBytes(session.threadId());
            for (int i = 0; i < MEASURED; i++) {
                c.regionWrite(0, 0x00, value);
            }
            long perWrite = (mx.getThreadAllocatedBytes(session.threadId()) - before) / MEASURED;
            System.out.println("[alloc] session thread: " + perWrite + " bytes per REGION_WRITE");
            assertTrue(perWrite < 16, perWrite + " bytes per REGION_WRITE");
        }
    }
}
