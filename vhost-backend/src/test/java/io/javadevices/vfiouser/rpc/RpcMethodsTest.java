package io.javadevices.vfiouser.rpc;

import io.javadevices.vfiouser.client.TestClient;
import io.javadevices.vfiouser.host.Controller;
import io.javadevices.vfiouser.sys.LibC;
import io.javadevices.vfiouser.sys.SocketStructs;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** Every control-plane method over the real socket: its success and each of its errors (nothing changed after one). */
@Timeout(30)
class RpcMethodsTest {
    @TempDir
    Path dir;
    private RpcFixture rpc;

    @BeforeEach
    void start() throws Exception {
        rpc = new RpcFixture(dir);
        synchronized (RecordingPlugin.CALLS) {
            RecordingPlugin.CALLS.clear();
        }
    }

    @AfterEach
    void stop() {
        rpc.close();
    }

    private static Map<String, Object> params(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        return m;
    }

    private List<?> controllers() throws Exception {
        return (List<?>) rpc.ok("controller_list", Map.of()).get("controllers");
    }

    @Test
    void controllerAddListRemoveWithRealNvmeControllers() throws Exception {
        assertEquals(List.of(), controllers());
        Map<?, ?> added = rpc.ok("controller_add", params("socket", rpc.sock("vm1.sock"),
                "namespaces", List.of("ram:1M", "null:1M"), "queues", 2L, "options", Map.of("dbbuf", "off")));
        assertEquals(Map.of("socket", rpc.sock("vm1.sock"), "device", "nvme"), added);
        assertTrue(Files.exists(dir.resolve("vm1.sock")));
        rpc.ok("controller_add", params("socket", dir.resolve("sub/../vm2.sock").toString(), "namespaces", "ram:2M"));
        List<?> list = controllers();
        assertEquals(2, list.size());
        Map<?, ?> first = (Map<?, ?>) list.get(0);
        assertEquals(rpc.sock("vm1.sock"), first.get("socket"));
        assertEquals("nvme", first.get("device"));
        assertEquals(false, first.get("connected"));
        assertEquals(0L, first.get("clients_total"));
        assertEquals(rpc.sock("vm2.sock"), ((Map<?, ?>) list.get(1)).get("socket"), "names are normalized");

        Map<?, ?> removed = rpc.ok("controller_remove", params("socket", rpc.sock("vm1.sock")));
        assertEquals(Map.of("socket", rpc.sock("vm1.sock"), "flushed", true), removed);
        assertFalse(Files.exists(dir.resolve("vm1.sock")), "the socket file is removed");
        assertEquals(1, controllers().size());
        assertEquals(-32602, rpc.error("controller_remove", params("socket", rpc.sock("vm1.sock")), "no controller"),
                "removing twice");
        rpc.ok("controller_add", params("socket", rpc.sock("vm1.sock"), "namespaces", List.of("ram:1M")));
        assertEquals(2, controllers().size(), "the socket can be served again");
    }

    @Test
    void controllerAddErrorsChangeNothing() throws Exception {
        String s = rpc.sock("a.sock");
        rpc.ok("controller_add", params("socket", s, "namespaces", List.of("ram:1M")));
        assertEquals(-32000, rpc.error("controller_add", params("socket", s), "already served"), "duplicate socket");
        assertEquals(-32000, rpc.error("controller_add", params("socket", dir.resolve("x/../a.sock").toString()),
                "already served"), "the same socket spelled differently");
        assertEquals(-32602, rpc.error("controller_add", params(), "\"socket\""), "missing socket");
        assertEquals(-32602, rpc.error("controller_add", params("socket", 5L), "socket must be a string"));
        assertEquals(-32602, rpc.error("controller_add", params("socket", ""), "socket"));
        assertEquals(-32602, rpc.error("controller_add", params("socket", "/tmp/a\u0000b"), "socket"), "NUL in a path");
        assertEquals(-32602, rpc.error("controller_add", params("socket", rpc.sock("b.sock"), "bogus", 1L),
                "unknown parameter \"bogus\""));
        assertEquals(-32602, rpc.error("controller_add", params("socket", rpc.sock("b.sock"), "device", "disk"),
                "no device plugin named 'disk'"));
        assertEquals(-32602, rpc.error("controller_add", params("socket", rpc.sock("b.sock"), "namespaces",
                List.of("disk:1G")), "namespaces"), "bad namespace grammar");
        assertEquals(-32602, rpc.error("controller_add", params("socket", rpc.sock("b.sock"), "namespaces",
                List.of("ram:1M", 7L)), "namespaces[1]"));
        assertEquals(-32602, rpc.error("controller_add", params("socket", rpc.sock("b.sock"), "namespaces",
                List.of()), "namespaces"));
        assertEquals(-32602, rpc.error("controller_add", params("socket", rpc.sock("b.sock"), "queues", "4"),
                "queues must be an integer"));
        assertEquals(-32602, rpc.error("controller_add", params("socket", rpc.sock("b.sock"), "queues", 0L),
                "queues"), "out of range");
        assertEquals(-32602, rpc.error("controller_add", params("socket", rpc.sock("b.sock"), "queues", 4.5),
                "queues must be an integer"));
        assertEquals(-32602, rpc.error("controller_add", params("socket", rpc.sock("b.sock"), "options",
                Map.of("dbbuf", 1L)), "options.dbbuf must be a string"));
        assertEquals(-32602, rpc.error("controller_add", params("socket", rpc.sock("b.sock"), "options",
                Map.of("colour", "red")), "colour"), "an option the device does not know");
        assertEquals(-32602, rpc.error("controller_add", params("socket", rpc.sock("b.sock"), "device", "dma-copy",
                "queues", 2L), "no queues option"));
        assertEquals(-32602, rpc.error("controller_add", params("socket", "/" + "x".repeat(200)), "socket"),
                "a path longer than sun_path");
        Files.writeString(dir.resolve("file"), "not a socket");
        assertEquals(-32000, rpc.error("controller_add", params("socket", rpc.sock("file")), "not a socket"));
        assertEquals("not a socket", Files.readString(dir.resolve("file")), "the file is left alone");
        assertEquals(1, controllers().size(), "no failed add left a controller");
        assertFalse(Files.exists(dir.resolve("b.sock")), "no failed add left a socket");
    }

    @Test
    void aStaleSocketIsReplacedAndALiveOneRefused() throws Exception {
        try (var stale = io.javadevices.vfiouser.transport.UnixListener.bind(dir.resolve("live.sock"), 0600)) {
            assertEquals(-32000, rpc.error("controller_add", params("socket", rpc.sock("live.sock")), "in use"));
        }
        deadSocket(dir.resolve("live.sock")); // what a crashed server leaves behind
        assertTrue(Files.exists(dir.resolve("live.sock")));
        rpc.ok("controller_add", params("socket", rpc.sock("live.sock"), "device", "dma-copy"));
        assertEquals("dma-copy", ((Map<?, ?>) controllers().get(0)).get("device"));
    }

    /** Binds a socket file and closes the socket without unlinking it: nobody listens on it. */
    static void deadSocket(Path path) throws Exception {
        int fd = LibC.socket(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0);
        try (Arena a = Arena.ofConfined()) {
            LibC.bind(fd, SocketStructs.sockaddrUn(a, path), SocketStructs.sockaddrUnLength(path));
        } finally {
            LibC.closeQuietly(fd);
        }
    }

    @Test
    void controllerRemoveWhileAClientIsConnectedDisconnectsIt() throws Exception {
        rpc.ok("controller_add", params("socket", rpc.sock("vm.sock"), "namespaces", List.of("ram:1M")));
        Controller c = rpc.host.find(dir.resolve("vm.sock"));
        try (TestClient client = TestClient.connect(dir.resolve("vm.sock"))) {
            client.version();
            c.server().awaitClientCount(1, Duration.ofSeconds(5));
            Map<?, ?> entry = (Map<?, ?>) controllers().get(0);
            assertEquals(true, entry.get("connected"));
            assertEquals(1L, entry.get("clients_total"));
            assertEquals(true, rpc.ok("controller_remove", params("socket", rpc.sock("vm.sock"))).get("flushed"));
            assertTrue(client.closedByServer(5000), "the client is disconnected");
        }
        assertFalse(Files.exists(dir.resolve("vm.sock")));
        assertEquals(List.of(), controllers());
    }

    @Test
    void aFailedFlushIsReportedAndTheControllerStillRemoved() throws Exception {
        String s = rpc.sock("f.sock");
        rpc.ok("controller_add", params("socket", s, "device", "recording", "options", Map.of("flush", "fail")));
        assertEquals(Map.of("socket", s, "flushed", false), rpc.ok("controller_remove", params("socket", s)));
        assertFalse(Files.exists(dir.resolve("f.sock")));
        assertEquals(List.of(), controllers());
        rpc.ok("controller_add", params("socket", s, "device", "recording", "options", Map.of("flush", "fail")));
        assertFalse(rpc.host.closeAll(), "the host's shutdown says a flush failed");
        assertEquals(-32000, rpc.error("controller_add", params("socket", s, "device", "dma-copy"), "shutting down"));
    }

    @Test
    void controllerListErrors() throws Exception {
        assertEquals(-32602, rpc.error("controller_list", params("all", true), "unknown parameter \"all\""));
    }

    @Test
    void namespaceMethodsAreRoutedToTheNamedControllersDevice() throws Exception {
        String s = rpc.sock("rec.sock");
        rpc.ok("controller_add", params("socket", s, "device", "recording", "namespaces", List.of("one", "two")));
        Map<?, ?> entry = (Map<?, ?>) controllers().get(0);
        assertEquals(List.of(Map.of("nsid", 1L, "spec", "one,two")), entry.get("namespaces"),
                "controller_list shows the device's namespace_list");
        assertEquals(Map.of("nsid", 2L, "method", "namespace_add"),
                rpc.ok("namespace_add", params("controller", s, "namespace", "ram:1G", "nsid", 2L)));
        rpc.ok("namespace_resize", params("controller", dir.resolve("./rec.sock").toString(), "nsid", 2L, "size", "2G"));
        rpc.ok("namespace_remove", params("controller", s, "nsid", 2L));
        synchronized (RecordingPlugin.CALLS) {
            List<String> methods = RecordingPlugin.CALLS.stream().map(Map.Entry::getKey).toList();
            assertEquals(List.of("namespace_list", "namespace_add", "namespace_resize", "namespace_remove"), methods);
            assertEquals(Map.of("namespace", "ram:1G", "nsid", 2L), RecordingPlugin.CALLS.get(1).getValue(),
                    "the device gets the params without the controller");
            assertEquals(Map.of("nsid", 2L, "size", "2G"), RecordingPlugin.CALLS.get(2).getValue());
        }
    }

    @Test
    void deviceMethodErrors() throws Exception {
        String s = rpc.sock("rec.sock");
        rpc.ok("controller_add", params("socket", s, "device", "recording"));
        rpc.ok("controller_add", params("socket", rpc.sock("plain.sock"), "device", "dma-copy"));
        assertEquals(-32602, rpc.error("namespace_add", params("controller", s, "namespace", "bad"), "'bad'"));
        assertEquals(-32000, rpc.error("namespace_add", params("controller", s, "namespace", "busy"), "in use"));
        assertEquals(-32601, rpc.error("namespace_add", params("controller", s, "namespace", "unknown"), "no such"));
        assertEquals(-32603, rpc.error("namespace_add", params("controller", s, "namespace", "boom"), "device bug"));
        assertEquals(-32602, rpc.error("namespace_add", params("namespace", "ram:1G"), "\"controller\""),
                "missing controller");
        assertEquals(-32602, rpc.error("namespace_add", params("controller", rpc.sock("nope.sock")), "no controller"),
                "unknown controller");
        assertEquals(-32602, rpc.error("namespace_add", params("controller", 3L), "controller must be a string"));
        assertEquals(-32601, rpc.error("namespace_add", params("controller", rpc.sock("plain.sock")),
                "does not offer it"), "a device without control()");
        assertEquals(-32601, rpc.error("namespace_format", params("controller", s), "namespace_format"),
                "a method the device does not list");
        assertEquals(-32601, rpc.error("no_such_method", params(), "method not found: no_such_method"));
    }

    @Test
    void statsGetSplitsTheDevicesKeysByInstance() throws Exception {
        String s = rpc.sock("rec.sock");
        rpc.ok("controller_add", params("socket", s, "device", "recording"));
        rpc.ok("controller_add", params("socket", rpc.sock("nvme.sock"), "namespaces", List.of("ram:1M")));
        Map<?, ?> all = rpc.ok("stats_get", params());
        assertEquals(2, ((List<?>) all.get("controllers")).size());
        Map<?, ?> one = rpc.ok("stats_get", params("controller", s, "format", "json"));
        Map<?, ?> stats = (Map<?, ?>) ((List<?>) one.get("controllers")).get(0);
        assertEquals(s, stats.get("socket"));
        assertEquals(0L, ((Map<?, ?>) stats.get("server")).get("clients.total"));
        assertEquals(Map.of("resets", 0L), stats.get("device"));
        Map<?, ?> queues = (Map<?, ?>) stats.get("queues");
        assertEquals(List.of("1", "2", "10"), List.copyOf(queues.keySet()), "numeric order");
        assertEquals(Map.of("commands", 7L), queues.get("10"));
        assertEquals(Map.of("1", Map.of("reads", 3L)), stats.get("namespaces"));
        assertEquals(Map.of("ns1.latency", Map.of("bounds_ns", List.of(1000L, Long.MAX_VALUE), "counts", List.of(4L, 1L),
                "sum_ns", 9000L)), stats.get("histograms"));
        Map<?, ?> nvme = (Map<?, ?>) ((List<?>) rpc.ok("stats_get", params("controller", rpc.sock("nvme.sock")))
                .get("controllers")).get(0);
        assertTrue(((Map<?, ?>) nvme.get("device")).containsKey("io.commands"), nvme.toString());

        assertEquals(-32602, rpc.error("stats_get", params("controller", rpc.sock("nope.sock")), "no controller"));
        assertEquals(-32602, rpc.error("stats_get", params("format", "xml"), "format"));
        assertEquals(-32602, rpc.error("stats_get", params("format", "prometheus"), "prometheus format not available yet"));
        assertEquals(-32602, rpc.error("stats_get", params("controllers", s), "unknown parameter"));
    }

    @Test
    void serverShutdownAnswersThenAsksTheHostToStop() throws Exception {
        assertEquals(-32602, rpc.error("server_shutdown", params("now", true), "unknown parameter"));
        assertEquals(0, rpc.shutdownRequests);
        try (RpcClient c = rpc.client()) {
            Map<?, ?> response = c.call("server_shutdown", Map.of());
            assertEquals(Map.of("shutting_down", true), response.get("result"));
        }
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (rpc.shutdownRequests == 0 && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertEquals(1, rpc.shutdownRequests, "the host's shutdown callback ran once");
    }
}
