package io.javadevices.vfiouser.metrics;

import io.javadevices.pci.Histogram;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PrometheusMetricsTest {
    private static final String VM1 = "/run/vm1.sock";
    private static final String VM2 = "/run/vm2.sock";

    private static ControllerSnapshot controller(String name, long commands) {
        Map<String, Long> server = new LinkedHashMap<>();
        server.put("dma.maps", 3L);
        server.put("clients.connected", 1L);
        server.put("clients.total", 7L);
        server.put("messages", 1234L);
        Map<String, Long> device = new LinkedHashMap<>();
        device.put("io.commands", commands);
        device.put("io.bytes.read", 4096L);
        device.put("dbbuf.active", 1L);
        device.put("io.queues", 2L);
        device.put("sq1.commands", commands - 5);
        device.put("sq3.commands", 5L);
        device.put("ns1.inflight", 4L);
        device.put("ns1.inflight.max", 16L);
        device.put("ns1.latency.p99-us", 250L);
        device.put("ns1.sync.failed", 0L);
        device.put("admin.opcode.0x06", 2L);
        // 10 observations: 6 at most 1 µs, 3 at most 1 ms, 1 above
        Histogram latency = new Histogram(new long[] {1_000, 1_000_000, Long.MAX_VALUE}, new long[] {6, 3, 1},
                2_500_000_000L);
        return new ControllerSnapshot(name, server, device, Map.of("ns1.latency", latency));
    }

    @Test
    void statisticsBecomeLabelledCountersAndGauges() {
        MetricsText t = MetricsText.parse(PrometheusMetrics.render(List.of(controller(VM1, 100))));
        // per-instance keys: the instance kind becomes a label, the metric name drops the number; counters are
        // named with _total in both the TYPE line and the samples (the text writer of client_java 1.x)
        assertEquals("counter", t.types.get("javadevices_sq_commands_total"));
        assertEquals(95, t.value("javadevices_sq_commands_total", "controller", VM1, "sq", "1"));
        assertEquals(5, t.value("javadevices_sq_commands_total", "controller", VM1, "sq", "3"));
        // device-wide keys, dots and dashes as underscores
        assertEquals(100, t.value("javadevices_io_commands_total", "controller", VM1));
        assertEquals(4096, t.value("javadevices_io_bytes_read_total", "controller", VM1));
        assertEquals(2, t.value("javadevices_admin_opcode_0x06_total", "controller", VM1));
        // gauges by the last word
        assertEquals("gauge", t.types.get("javadevices_dbbuf_active"));
        assertEquals("gauge", t.types.get("javadevices_io_queues"));
        assertEquals("gauge", t.types.get("javadevices_ns_inflight"));
        assertEquals("gauge", t.types.get("javadevices_ns_inflight_max"));
        assertEquals("gauge", t.types.get("javadevices_ns_latency_p99_us"));
        assertEquals("gauge", t.types.get("javadevices_ns_sync_failed"));
        assertEquals(250, t.value("javadevices_ns_latency_p99_us", "controller", VM1, "ns", "1"));
        assertEquals(4, t.value("javadevices_ns_inflight", "controller", VM1, "ns", "1"));
        // the transport's resources: its own gauges, the rest counters
        assertEquals("gauge", t.types.get("javadevices_vfio_user_dma_maps"));
        assertEquals("gauge", t.types.get("javadevices_vfio_user_clients_connected"));
        assertEquals("counter", t.types.get("javadevices_vfio_user_clients_total"));
        assertEquals(7, t.value("javadevices_vfio_user_clients_total",
                "controller", VM1));
        assertEquals(1234, t.value("javadevices_vfio_user_messages_total", "controller", VM1));
        assertEquals(3, t.value("javadevices_vfio_user_dma_maps", "controller", VM1));
    }

    @Test
    void histogramBucketsAreCumulativeInSeconds() {
        MetricsText t = MetricsText.parse(PrometheusMetrics.render(List.of(controller(VM1, 100))));
        String h = "javadevices_ns_latency_seconds";
        assertEquals("histogram", t.types.get(h));
        assertEquals(6, t.value(h + "_bucket", "controller", VM1, "ns", "1", "le", "1.0E-6"));
        assertEquals(9, t.value(h + "_bucket", "controller", VM1, "ns", "1", "le", "0.001"));
        assertEquals(10, t.value(h + "_bucket", "controller", VM1, "ns", "1", "le", "+Inf"));
        assertEquals(10, t.value(h + "_count", "controller", VM1, "ns", "1"));
        assertEquals(2.5, t.value(h + "_sum", "controller", VM1, "ns", "1"), 1e-9);
    }

    @Test
    void controllersShareFamiliesWithOneSeriesEach() {
        String text = PrometheusMetrics.render(List.of(controller(VM1, 100), controller(VM2, 300)));
        MetricsText t = MetricsText.parse(text); // parse fails on a family declared twice or a repeated series
        assertEquals(100, t.value("javadevices_io_commands_total", "controller", VM1));
        assertEquals(300, t.value("javadevices_io_commands_total", "controller", VM2));
        assertEquals(1, text.lines().filter(l -> l.equals("# TYPE javadevices_io_commands_total counter")).count());
    }

    @Test
    void closedBucketListGetsAnEmptyInfBucket() {
        Histogram closed = new Histogram(new long[] {1_000_000, 2_000_000}, new long[] {1, 2}, 4_000_000L);
        MetricsText t = MetricsText.parse(PrometheusMetrics.render(List.of(
                new ControllerSnapshot(VM1, Map.of(), Map.of(), Map.of("ns2.latency", closed)))));
        String h = "javadevices_ns_latency_seconds_bucket";
        assertEquals(1, t.value(h, "controller", VM1, "ns", "2", "le", "0.001"));
        assertEquals(3, t.value(h, "controller", VM1, "ns", "2", "le", "0.002"));
        assertEquals(3, t.value(h, "controller", VM1, "ns", "2", "le", "+Inf"));
    }

    /** A buggy device's values are left out, the rest of the scrape is served. */
    @Test
    void malformedValuesAreLeftOut() {
        Map<String, Long> device = new LinkedHashMap<>();
        device.put("io.commands", -1L); // a counter going negative
        device.put("io.reads", 5L);
        device.put("weird.clash.active", 1L); // gauge javadevices_weird_clash_active ...
        Map<String, Histogram> histograms = new LinkedHashMap<>();
        histograms.put("ns1.latency", new Histogram(new long[] {5, 5}, new long[] {1, 1}, 10)); // bounds not ascending
        histograms.put("ns2.latency", new Histogram(new long[] {5, 9}, new long[] {1, -1}, 10)); // negative count
        histograms.put("weird.clash.active", new Histogram(new long[] {5}, new long[] {1}, 5)); // ... and a histogram
        MetricsText t = MetricsText.parse(PrometheusMetrics.render(List.of(
                new ControllerSnapshot(VM1, Map.of(), device, histograms))));
        assertFalse(t.has("javadevices_io_commands_total"));
        assertEquals(5, t.value("javadevices_io_reads_total", "controller", VM1));
        assertFalse(t.has("javadevices_ns_latency_seconds_bucket"));
        assertEquals(1, t.value("javadevices_weird_clash_active", "controller", VM1));
    }

    @Test
    void labelValuesAreEscaped() {
        String odd = "/run/a \"quoted\" \\ path.sock";
        MetricsText t = MetricsText.parse(PrometheusMetrics.render(List.of(
                new ControllerSnapshot(odd, Map.of("messages", 1L), Map.of(), Map.of()))));
        assertEquals(1, t.value("javadevices_vfio_user_messages_total", "controller", odd));
    }

    @Test
    void counterGaugeRule() {
        assertTrue(MetricName.isGauge("ns1.latency.p999-us"));
        assertTrue(MetricName.isGauge("ns1.latency.max-us"));
        assertTrue(MetricName.isGauge("doorbells.polled"));
        assertFalse(MetricName.isGauge("doorbell.polled.sq"));
        assertFalse(MetricName.isGauge("sq3.commands"));
        assertFalse(MetricName.isGauge("guest.error.prp.offset"));
        MetricName m = MetricName.of("sq03.commands");
        assertEquals("javadevices_sq_commands", m.name());
        assertEquals("sq", m.instanceLabel());
        assertEquals("3", m.instance());
        assertEquals(null, MetricName.of("io2x.commands").instanceLabel(), "letters then a number, nothing else");
    }
}
