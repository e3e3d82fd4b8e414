package io.javadevices.vfiouser.rpc;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The namespace methods routed to a real NVMe controller's control(), as an operator drives them. */
@Timeout(30)
class NvmeNamespaceRpcTest {
    @TempDir
    Path dir;
    private RpcFixture rpc;
    private String vm;

    @BeforeEach
    void start() throws Exception {
        rpc = new RpcFixture(dir);
        vm = rpc.sock("vm.sock");
        rpc.ok("controller_add", Map.of("socket", vm, "namespaces", List.of("ram:1M"),
                "options", Map.of("max-namespaces", "4")));
    }

    @AfterEach
    void stop() {
        rpc.close();
    }

    private List<?> namespaces() throws Exception {
        return (List<?>) rpc.ok("namespace_list", Map.of("controller", vm)).get("namespaces");
    }

    @Test
    void addResizeRemoveAndListThroughTheControlPlane() throws Exception {
        Map<?, ?> first = (Map<?, ?>) namespaces().get(0);
        assertEquals(1L, first.get("nsid"));
        assertEquals(1L << 20, first.get("size_bytes"));
        Map<?, ?> listed = (Map<?, ?>) ((List<?>) rpc.ok("controller_list", Map.of()).get("controllers")).get(0);
        assertEquals(namespaces(), listed.get("namespaces"), "controller_list shows the device's namespace_list");

        Map<?, ?> added = rpc.ok("namespace_add", Map.of("controller", vm, "namespace", "ram:2M@4096"));
        assertEquals(2L, added.get("nsid"));
        assertEquals(2L << 20, added.get("size_bytes"));
        assertEquals(4096L, added.get("block_size"));
        assertEquals(2, namespaces().size());

        Map<?, ?> resized = rpc.ok("namespace_resize", Map.of("controller", vm, "nsid", 2L, "size", "4M"));
        assertEquals(4L << 20, resized.get("size_bytes"));
        assertEquals(1024L, resized.get("blocks"));

        assertEquals(2L, rpc.ok("namespace_remove", Map.of("controller", vm, "nsid", 2L)).get("nsid"));
        assertEquals(1, namespaces().size());
    }

    @Test
    void theDevicesRefusalsBecomeJsonRpcErrors() throws Exception {
        assertEquals(-32602, rpc.error("namespace_add", Map.of("controller", vm, "namespace", "disk:1G"), "disk:1G"),
                "bad grammar");
        assertEquals(-32602, rpc.error("namespace_add", Map.of("controller", vm), "namespace"), "missing namespace");
        assertEquals(-32000, rpc.error("namespace_add", Map.of("controller", vm, "namespace", "ram:1M", "nsid", 1L),
                "1"), "NSID in use");
        assertEquals(-32602, rpc.error("namespace_remove", Map.of("controller", vm, "nsid", "one"), "nsid"));
        assertEquals(-32602, rpc.error("namespace_resize", Map.of("controller", vm, "nsid", 1L), "size"));
        long nul = rpc.error("namespace_add", Map.of("controller", vm, "namespace", "file:/tmp/a\u0000b"), "");
        assertTrue(nul == -32602 || nul == -32000, "NUL in a path: refused by the device, not an internal error: " + nul);
        assertEquals(-32602, rpc.error("namespace_add", Map.of("controller", vm, "namespace", "ram:1M", "nsid",
                Long.MAX_VALUE), "nsid"), "NSID out of range");
        assertEquals(-32602, rpc.error("namespace_resize", Map.of("controller", vm, "nsid", 1L, "size",
                Long.MIN_VALUE), "size"), "negative size");
        assertEquals(1, namespaces().size(), "nothing changed");
    }

    @Test
    void statsGetShowsTheControllersQueuesAndNamespaces() throws Exception {
        Map<?, ?> stats = (Map<?, ?>) ((List<?>) rpc.ok("stats_get", Map.of("controller", vm)).get("controllers"))
                .get(0);
        assertTrue(((Map<?, ?>) stats.get("device")).containsKey("io.commands"), stats.toString());
        assertTrue(stats.get("namespaces") instanceof Map<?, ?>, stats.toString());
        assertTrue(stats.get("histograms") instanceof Map<?, ?>, stats.toString());
        assertFalse(((Map<?, ?>) stats.get("device")).keySet().stream().anyMatch(k -> ((String) k).startsWith("sq")),
                "per-queue keys are under queues, not device");
    }
}
