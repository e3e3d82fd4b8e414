package io.javadevices.vfiouser.cli;

import io.javadevices.vfiouser.client.TestClient;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.net.UnixDomainSocketAddress;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The server as a real process: SIGTERM and SIGINT shut it down cleanly (client disconnected, devices flushed,
 * socket removed, exit 0), a failed flush makes the exit status 1 with one line saying which, the metrics port
 * serves the live controller, and a socket inherited from {@code systemd-socket-activate} (the environment
 * convention, or {@code --socket-fd 3}) is served and its file left in place.
 */
class CleanShutdownProcessTest {
    private static final Duration START = Duration.ofSeconds(30);

    @TempDir
    Path dir;

    @Test
    void sigtermDisconnectsFlushesRemovesTheSocketAndExits0() throws Exception {
        Path socket = dir.resolve("nvme.sock");
        Path image = dir.resolve("disk.raw");
        try (ChildServer server = ChildServer.start(dir, "term", "--socket", socket.toString(),
                "--namespace", "file:" + image + ":16M", "--metrics-port", "0")) {
            server.awaitOut("serving ", START);
            String url = server.awaitOut("metrics on ", START).substring("metrics on ".length());
            HttpResponse<String> scrape = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(url))
                    .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, scrape.statusCode());
            assertTrue(scrape.body().contains("javadevices_io_queues{controller=\"" + socket.toAbsolutePath() + "\"} 0.0"),
                    scrape.body());
            try (TestClient client = TestClient.connect(socket)) {
                client.version();
                server.signal("TERM");
                assertTrue(client.closedByServer(20_000), "the client is disconnected");
                assertEquals(0, server.awaitExit(), server.err());
            }
            assertFalse(Files.exists(socket), "socket file removed");
            assertTrue(server.err().contains("every device flushed"), server.err());
            assertEquals(16L << 20, Files.size(image));
        }
    }

    /** One JSON-RPC call over the control socket: the response line. */
    private static String call(Path rpc, String request) throws Exception {
        try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(rpc))) {
            c.write(ByteBuffer.wrap((request + "\n").getBytes(StandardCharsets.UTF_8)));
            ByteBuffer buffer = ByteBuffer.allocate(1 << 20);
            while (buffer.position() == 0 || buffer.get(buffer.position() - 1) != '\n') {
                if (c.read(buffer) < 0) {
                    break;
                }
            }
            return new String(buffer.array(), 0, buffer.position(), StandardCharsets.UTF_8);
        }
    }

    /**
     * The many-controller host: controllers added over the control plane show in stats_get's Prometheus text and
     * on the metrics port; SIGTERM stops them all cleanly.
     */
    @Test
    void controlPlaneControllersInPrometheusTextAndOnTheMetricsPort() throws Exception {
        Path rpc = dir.resolve("rpc.sock");
        Path vm1 = dir.resolve("vm1.sock");
        Path vm2 = dir.resolve("vm2.sock");
        try (ChildServer server = ChildServer.start(dir, "host", "--rpc-socket", rpc.toString(), "--metrics-port", "0")) {
            String url = server.awaitOut("metrics on ", START).substring("metrics on ".length());
            server.awaitOut("control plane ", START);
            for (Path vm : List.of(vm1, vm2)) {
                String added = call(rpc, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"controller_add\",\"params\":"
                        + "{\"socket\":\"" + vm + "\",\"device\":\"dma-copy\"}}");
                assertTrue(added.contains("\"result\""), added + "\n" + server.out() + server.err());
            }
            String text = call(rpc, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"stats_get\",\"params\":{\"format\":\"prometheus\"}}");
            assertTrue(text.contains("javadevices_vfio_user_clients_total{controller=\\\"" + vm1.toAbsolutePath() + "\\\"} 0.0"), text);
            assertTrue(text.contains("javadevices_vfio_user_clients_total{controller=\\\"" + vm2.toAbsolutePath() + "\\\"} 0.0"), text);
            String scraped = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(url))
                    .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString()).body();
            assertTrue(scraped.contains("javadevices_copies_total{controller=\"" + vm2.toAbsolutePath() + "\"} 0.0"), scraped);
            server.signal("TERM");
            assertEquals(0, server.awaitExit(), server.err());
            assertFalse(Files.exists(vm1) || Files.exists(vm2) || Files.exists(rpc), "every socket removed");
            assertTrue(server.err().contains("stopped 2 controller(s): every device flushed"), server.err());
        }
    }

    @Test
    void sigintIsACleanShutdownToo() throws Exception {
        Path socket = dir.resolve("copy.sock");
        try (ChildServer server = ChildServer.start(dir, "int", "--socket", socket.toString(), "--device", "dma-copy")) {
            server.awaitOut("serving ", START);
            server.signal("INT");
            assertEquals(0, server.awaitExit(), server.err());
            assertFalse(Files.exists(socket));
        }
    }

    /** Another signal that ends the JVM (SIGHUP: the shutdown hook) still flushes and removes the socket. */
    @Test
    void sighupRunsTheSameShutdownThroughTheHook() throws Exception {
        Path socket = dir.resolve("hup.sock");
        try (ChildServer server = ChildServer.start(dir, "hup", "--socket", socket.toString(), "--device", "dma-copy")) {
            server.awaitOut("serving ", START);
            server.signal("HUP");
            assertEquals(128 + 1, server.awaitExit(), "the JVM's status for SIGHUP; only SIGTERM/SIGINT choose it");
            assertFalse(Files.exists(socket));
            assertTrue(server.err().contains("every device flushed"), server.err());
        }
    }

    @Test
    void aFailedFlushMakesTheExitStatus1WithOneLine() throws Exception {
        Path socket = dir.resolve("broken.sock");
        try (ChildServer server = ChildServer.start(dir, "flush", "--socket", socket.toString(), "--device", "flush-fails")) {
            server.awaitOut("serving ", START);
            server.signal("TERM");
            assertEquals(1, server.awaitExit(), server.err());
            List<String> failures = server.err().lines().filter(l -> l.contains("flush of the device on")).toList();
            assertEquals(1, failures.size(), server.err());
            assertEquals("nvme-server: flush of the device on " + socket.toAbsolutePath() + " failed: "
                    + FlushFailsPlugin.MESSAGE, failures.get(0));
            assertFalse(Files.exists(socket), "closed and removed all the same");
        }
    }

    /** sd_listen_fds: LISTEN_PID/LISTEN_FDS name the server, which serves fd 3 without being told. */
    @Test
    void socketActivationByTheEnvironment() throws Exception {
        servesAnActivatedSocket("env", "--device", "dma-copy");
    }

    @Test
    void socketActivationWithSocketFd3() throws Exception {
        servesAnActivatedSocket("fd", "--device", "dma-copy", "--socket-fd", "3");
    }

    private void servesAnActivatedSocket(String name, String... args) throws Exception {
        Assumptions.assumeTrue(Files.isExecutable(ChildServer.SOCKET_ACTIVATE),
                "needs systemd-socket-activate (package systemd; qemu-tests/image/setup-host.sh installs it)");
        Path socket = dir.resolve(name + ".sock");
        try (ChildServer server = ChildServer.start(dir, name, List.of(ChildServer.SOCKET_ACTIVATE.toString(),
                "-l", socket.toString()), args)) {
            long deadline = System.nanoTime() + START.toNanos();
            while (!Files.exists(socket) && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            // systemd-socket-activate starts the server at the first connection, like a .socket unit.
            try (TestClient client = TestClient.connect(socket).timeout(START.toMillis())) {
                assertFalse(client.version().isError());
            }
            server.awaitOut("serving ", START);
            assertTrue(server.err().contains(name.equals("env")
                    ? "socket activation: LISTEN_FDS=1 for this process" : "serving on inherited fd 3 (--socket-fd)"),
                    server.err());
            server.signal("TERM");
            assertEquals(0, server.awaitExit(), server.err());
            assertTrue(Files.exists(socket), "the socket file belongs to whoever made the socket: left in place");
        }
    }
}
