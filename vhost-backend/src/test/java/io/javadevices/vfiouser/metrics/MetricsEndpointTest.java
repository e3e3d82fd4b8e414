package io.javadevices.vfiouser.metrics;

import io.javadevices.pci.sample.DmaCopyDevice;
import io.javadevices.vfiouser.client.TestClient;
import io.javadevices.vfiouser.server.VfioUserServer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.ConnectException;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MetricsEndpointTest {
    @TempDir
    Path dir;

    private static String scrape(String url) throws Exception {
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(5))
                .build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode());
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("text/plain"), r.headers().toString());
        return r.body();
    }

    /** Each scrape reads the servers anew: a client that connected shows in the next scrape. */
    @Test
    void scrapeOverLoopbackReadsTheServersNow() throws Exception {
        try (VfioUserServer server = VfioUserServer.builder().socket(dir.resolve("a.sock"))
                .device(DmaCopyDevice::new).build()) {
            server.start();
            try (MetricsEndpoint endpoint = MetricsEndpoint.start(0, () -> List.of(server))) {
                assertTrue(endpoint.url().startsWith("http://127.0.0.1:"), endpoint.url());
                String controller = server.socketPath().toString();
                MetricsText before = MetricsText.parse(scrape(endpoint.url()));
                assertEquals(0, before.value("javadevices_vfio_user_clients_total", "controller", controller));
                try (TestClient c = TestClient.connect(server.socketPath())) {
                    c.version();
                    server.awaitClientCount(1, Duration.ofSeconds(5));
                    MetricsText during = MetricsText.parse(scrape(endpoint.url()));
                    assertEquals(1, during.value("javadevices_vfio_user_clients_total", "controller", controller));
                    assertEquals(1, during.value("javadevices_vfio_user_clients_connected", "controller", controller));
                    assertEquals("gauge", during.types.get("javadevices_vfio_user_clients_connected"));
                }
            }
        }
    }

    /** Bound to 127.0.0.1 only: the same port on another address of this machine refuses the connection. */
    @Test
    void notReachableOnOtherAddresses() throws Exception {
        try (MetricsEndpoint endpoint = MetricsEndpoint.start(0, List::of)) {
            scrape(endpoint.url());
            Optional<InetAddress> other = NetworkInterface.networkInterfaces()
                    .flatMap(NetworkInterface::inetAddresses)
                    .filter(a -> a instanceof Inet4Address && !a.isLoopbackAddress()).findFirst();
            InetAddress target = other.orElse(InetAddress.getByName("127.0.0.2")); // still loopback, another address
            try (Socket s = new Socket()) {
                assertThrows(ConnectException.class,
                        () -> s.connect(new InetSocketAddress(target, endpoint.port()), 2000), target.toString());
            }
        }
    }

    @Test
    void portInUseIsAnError() throws Exception {
        try (MetricsEndpoint first = MetricsEndpoint.start(0, List::of)) {
            assertThrows(java.io.IOException.class, () -> MetricsEndpoint.start(first.port(), List::of).close());
        }
    }
}
