package io.javadevices.vfiouser.cli;

import io.javadevices.pci.sample.DmaCopyDevice;
import io.javadevices.vfiouser.client.SocketFds;
import io.javadevices.vfiouser.client.TestClient;
import io.javadevices.vfiouser.server.VfioUserServer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** {@link CleanShutdown} over several servers at once, in process (the process-level signals: CleanShutdownProcessTest). */
class CleanShutdownTest {
    @TempDir
    Path dir;

    private static VfioUserServer started(VfioUserServer.Builder b) throws Exception {
        VfioUserServer s = b.build();
        s.start();
        return s;
    }

    @Test
    void everyServerIsStoppedFlushedAndClosedAndOneFailureIsReported() throws Exception {
        VfioUserServer good = started(VfioUserServer.builder().socket(dir.resolve("good.sock")).device(DmaCopyDevice::new));
        VfioUserServer bad = started(VfioUserServer.builder().socket(dir.resolve("bad.sock"))
                .device(c -> new FlushFailsPlugin().create(Map.of(), c)));
        Path inheritedPath = dir.resolve("inherited.sock");
        VfioUserServer inherited = started(VfioUserServer.builder().listenerFd(SocketFds.listening(inheritedPath))
                .device(DmaCopyDevice::new));
        assertEquals(inheritedPath.toAbsolutePath(), inherited.socketPath(), "named by the path it is bound to");
        try (TestClient a = TestClient.connect(good.socketPath()); TestClient b = TestClient.connect(inheritedPath)) {
            a.version();
            b.version();
            good.awaitClientCount(1, Duration.ofSeconds(5));
            inherited.awaitClientCount(1, Duration.ofSeconds(5));
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            int status = CleanShutdown.run(List.of(good, bad, inherited), new PrintStream(err, true, StandardCharsets.UTF_8));
            String text = err.toString(StandardCharsets.UTF_8);
            assertEquals(1, status, text);
            assertEquals(List.of("nvme-server: flush of the device on " + bad.socketPath() + " failed: "
                    + FlushFailsPlugin.MESSAGE), text.lines().filter(l -> l.contains("flush of")).toList());
            assertTrue(a.closedByServer(5000) && b.closedByServer(5000), "clients disconnected");
        }
        assertFalse(good.isServing() || bad.isServing() || inherited.isServing());
        assertFalse(Files.exists(dir.resolve("good.sock")));
        assertFalse(Files.exists(dir.resolve("bad.sock")), "removed even though its flush failed");
        assertTrue(Files.exists(inheritedPath), "an inherited socket's file is its creator's");
    }

    @Test
    void allFlushedIsStatus0AndStopServingKeepsTheDeviceOpenUntilClose() throws Exception {
        VfioUserServer server = started(VfioUserServer.builder().socket(dir.resolve("s.sock")).device(DmaCopyDevice::new));
        server.stopServing();
        assertFalse(server.isServing());
        assertTrue(Files.exists(dir.resolve("s.sock")), "bound until close");
        assertNotNull(server.device());
        assertEquals(0, CleanShutdown.run(List.of(server), new PrintStream(new ByteArrayOutputStream())));
        assertFalse(Files.exists(dir.resolve("s.sock")));
        assertEquals(List.of(), CleanShutdown.shutdown(List.of(server)), "idempotent");
    }
}
