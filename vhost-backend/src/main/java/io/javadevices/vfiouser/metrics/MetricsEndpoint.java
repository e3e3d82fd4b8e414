package io.javadevices.vfiouser.metrics;

import io.javadevices.vfiouser.server.VfioUserServer;
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import io.prometheus.metrics.model.registry.MultiCollector;
import io.prometheus.metrics.model.registry.PrometheusRegistry;

import java.io.IOException;
import java.net.InetAddress;
import java.util.Collection;
import java.util.Objects;
import java.util.function.Supplier;

/**
 * {@code --metrics-port PORT}: the {@link PrometheusMetrics} text on {@code http://127.0.0.1:PORT/metrics}, served
 * by the Prometheus client library's HTTP server bound to the loopback address only (the numbers name socket
 * paths and show guest activity: nothing for the network; a Prometheus on another machine scrapes through a
 * reverse proxy or a node exporter's textfile). The numbers are read on each scrape, on the HTTP server's thread
 * ({@link MultiCollector}): no background thread touches the devices.
 */
public final class MetricsEndpoint implements AutoCloseable {
    private final HTTPServer http;

    private MetricsEndpoint(HTTPServer http) {
        this.http = http;
    }

    /**
     * Starts serving; {@code port} 0 picks a free port ({@link #port()}).
     *
     * @param servers the controllers to report, asked again on every scrape (the set may change)
     * @throws IOException if the port cannot be bound (in use, privileged)
     */
    public static MetricsEndpoint start(int port, Supplier<? extends Collection<VfioUserServer>> servers)
            throws IOException {
        Objects.requireNonNull(servers, "servers");
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("metrics port must be 0..65535: " + port);
        }
        PrometheusRegistry registry = new PrometheusRegistry();
        registry.register((MultiCollector) () -> PrometheusMetrics.collect(
                servers.get().stream().map(ControllerSnapshot::of).toList()));
        HTTPServer http = HTTPServer.builder()
                .inetAddress(InetAddress.getLoopbackAddress())
                .port(port)
                .registry(registry)
                .buildAndStart();
        return new MetricsEndpoint(http);
    }

    /** The bound port. */
    public int port() {
        return http.getPort();
    }

    /** The scrape address, e.g. {@code http://127.0.0.1:9400/metrics}. */
    public String url() {
        return "http://" + InetAddress.getLoopbackAddress().getHostAddress() + ":" + port() + "/metrics";
    }

    @Override
    public void close() {
        http.close();
    }
}
