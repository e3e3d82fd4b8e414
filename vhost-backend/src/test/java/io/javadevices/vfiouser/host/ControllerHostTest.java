package io.javadevices.vfiouser.host;

import io.javadevices.pci.DeviceContext;
import io.javadevices.pci.DeviceControl.ControlException;
import io.javadevices.pci.PciDevice;
import io.javadevices.pci.PciDevicePlugin;
import io.javadevices.pci.WorkerPool;
import io.javadevices.pci.sample.DmaCopyDevice;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/** The registry itself: names, the shared pool handed to devices, refusals, shutdown. */
@Timeout(30)
class ControllerHostTest {
    @TempDir
    Path dir;

    /** A plugin whose devices remember the context they were created with. */
    private static final class CapturingPlugin implements PciDevicePlugin {
        volatile DeviceContext context;

        @Override
        public String name() {
            return "capture";
        }

        @Override
        public String description() {
            return "test";
        }

        @Override
        public String optionsHelp() {
            return "";
        }

        @Override
        public PciDevice create(Map<String, String> options, DeviceContext context) {
            this.context = context;
            return new DmaCopyDevice(context);
        }
    }

    private static final WorkerPool POOL = new WorkerPool() {
        @Override
        public Registration add(Poller poller, String name) {
            throw new UnsupportedOperationException();
        }

        @Override
        public int threads() {
            return 1;
        }
    };

    @Test
    void everyDeviceGetsTheHostsWorkerPool() throws Exception {
        CapturingPlugin plugin = new CapturingPlugin();
        try (ControllerHost host = new ControllerHost(List.of(plugin), ControllerDefaults.standard(), POOL)) {
            host.add(new ControllerSpec(dir.resolve("a.sock"), "capture", Map.of()));
            assertSame(POOL, plugin.context.workers());
        }
        try (ControllerHost host = new ControllerHost(List.of(plugin), ControllerDefaults.standard(), null)) {
            host.add(new ControllerSpec(dir.resolve("b.sock"), "capture", Map.of()));
            assertNull(plugin.context.workers(), "no pool: the device makes its own");
        }
    }

    @Test
    void controllersAreNamedByTheirNormalizedSocketPath() throws Exception {
        try (ControllerHost host = new ControllerHost(List.of(new CapturingPlugin()),
                new ControllerDefaults(0640, null, io.javadevices.vfiouser.server.Limits.defaults()), null)) {
            Controller c = host.add(new ControllerSpec(dir.resolve("x/../a.sock"), "capture", Map.of()));
            assertEquals(dir.resolve("a.sock").toAbsolutePath(), c.socket());
            assertEquals("rw-r-----", java.nio.file.attribute.PosixFilePermissions.toString(
                    Files.getPosixFilePermissions(c.socket())), "the defaults' socket mode");
            assertSame(c, host.find(dir.resolve("./a.sock")));
            ControlException dup = assertThrows(ControlException.class,
                    () -> host.add(new ControllerSpec(dir.resolve("a.sock"), "capture", Map.of())));
            assertEquals(ControlException.Kind.REFUSED, dup.kind());
            ControlException unknown = assertThrows(ControlException.class,
                    () -> host.add(new ControllerSpec(dir.resolve("b.sock"), "nope", Map.of())));
            assertEquals(ControlException.Kind.INVALID_PARAMS, unknown.kind());
            assertTrue(unknown.getMessage().contains("capture"), "names the available devices");
            assertTrue(host.remove(dir.resolve("a.sock")));
            assertEquals(ControlException.Kind.INVALID_PARAMS,
                    assertThrows(ControlException.class, () -> host.remove(dir.resolve("a.sock"))).kind());
        }
    }

    @Test
    void shutdownRequestsRunOffTheCallersThreadAndCloseRefusesNewControllers() throws Exception {
        CompletableFuture<Thread> ranOn = new CompletableFuture<>();
        ControllerHost host = new ControllerHost(List.of(new CapturingPlugin()), ControllerDefaults.standard(), null);
        host.onShutdownRequest(() -> ranOn.complete(Thread.currentThread()));
        host.requestShutdown();
        assertNotSame(Thread.currentThread(), ranOn.get(5, TimeUnit.SECONDS));
        Controller c = host.add(new ControllerSpec(dir.resolve("a.sock"), "capture", Map.of()));
        assertTrue(host.closeAll(), "DmaCopyDevice's default flush succeeds");
        assertFalse(c.serving());
        assertFalse(Files.exists(c.socket()));
        assertEquals(List.of(), host.controllers());
        assertEquals(ControlException.Kind.REFUSED, assertThrows(ControlException.class,
                () -> host.add(new ControllerSpec(dir.resolve("b.sock"), "capture", Map.of()))).kind());
        assertTrue(host.closeAll(), "idempotent");
    }
}
