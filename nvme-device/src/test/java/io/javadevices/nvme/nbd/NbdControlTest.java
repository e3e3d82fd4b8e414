package io.javadevices.nvme.nbd;

import io.javadevices.nvme.NvmeController;
import io.javadevices.nvme.NvmeOptions;
import io.javadevices.pci.DeviceControl.ControlException;
import io.javadevices.pci.testkit.TestHost;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The control plane and an NBD namespace (against the in-process scripted server): it can be added and removed like
 * any other, but not resized, since the export's size belongs to its server.
 */
class NbdControlTest {
    @TempDir
    Path dir;

    @Test
    void anNbdNamespaceIsAddedAndRemovedButNeverResized() throws Exception {
        Path socket = dir.resolve("nbd.sock");
        try (FakeNbdServer server = new FakeNbdServer(socket, FakeNbdServer.Mode.GOOD);
             TestHost host = TestHost.heap(16L << 20)) {
            NvmeController c = host.attach(ctx -> new NvmeController(NvmeOptions.parse(Map.of("queues", "1",
                    "namespaces", "ram:1M")), ctx));
            String uri = NbdTestServers.uri(socket, "");
            assertEquals(Map.of("nsid", 2L, "size_bytes", FakeNbdServer.SIZE, "block_size", 512L),
                    c.control().call("namespace_add", Map.of("namespace", uri)));
            Object before = c.control().call("namespace_list", Map.of());
            assertTrue(before.toString().contains("spec=" + uri), before.toString());

            ControlException e = assertThrows(ControlException.class,
                    () -> c.control().call("namespace_resize", Map.of("nsid", 2L, "size", "2M")));
            assertEquals(ControlException.Kind.REFUSED, e.kind());
            assertTrue(e.getMessage().contains("belongs to its server"), e.getMessage());
            assertEquals(before, c.control().call("namespace_list", Map.of()), "nothing changed");
            assertEquals(FakeNbdServer.SIZE, c.namespace(2).bytes());

            assertEquals(Map.of("nsid", 2L, "flushed", true), c.control().call("namespace_remove", Map.of("nsid", 2L)));
            assertNull(c.namespace(2));
            assertEquals(List.of(1), c.namespaceTable().attachedList().stream().map(ns -> ns.nsid()).toList());
        }
    }
}
