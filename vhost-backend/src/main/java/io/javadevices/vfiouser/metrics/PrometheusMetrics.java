package io.javadevices.vfiouser.metrics;

import io.javadevices.pci.Histogram;
import io.javadevices.vfiouser.server.VfioUserServer;
import io.prometheus.metrics.config.EscapingScheme;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.snapshots.ClassicHistogramBuckets;
import io.prometheus.metrics.model.snapshots.CounterSnapshot;
import io.prometheus.metrics.model.snapshots.DataPointSnapshot;
import io.prometheus.metrics.model.snapshots.GaugeSnapshot;
import io.prometheus.metrics.model.snapshots.HistogramSnapshot;
import io.prometheus.metrics.model.snapshots.Labels;
import io.prometheus.metrics.model.snapshots.MetricSnapshot;
import io.prometheus.metrics.model.snapshots.MetricSnapshots;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * The controllers' numbers in the Prometheus text exposition format (version 0.0.4), built with the Prometheus
 * client library's data model and written by its text writer: the same text for the control plane's
 * {@code stats_get format=prometheus} and for the {@code --metrics-port} HTTP endpoint ({@link MetricsEndpoint}).
 *
 * <ul>
 *   <li>Every sample has the label {@code controller} (the socket path); per-instance statistics add their
 *       instance label ({@code sq="3"}, {@code ns="1"}), see {@link MetricName}.</li>
 *   <li>The transport's {@link VfioUserServer#resources()} are {@code javadevices_vfio_user_<key>}; its gauges are
 *       {@link #SERVER_GAUGES} (the host knows its own keys), the rest counters.</li>
 *   <li>The device's {@code statistics()} are {@code javadevices_<key>}, counter or gauge by {@link MetricName}'s
 *       rule.</li>
 *   <li>The device's {@code histograms()} are Prometheus histograms {@code javadevices_<key>_seconds}: the
 *       plugin-api {@link Histogram}'s per-bucket counts become cumulative {@code _bucket{le="..."}} lines (the
 *       writer accumulates), bounds in seconds, the open last bucket {@code le="+Inf"}.</li>
 * </ul>
 *
 * A value the model refuses (a negative counter, a histogram whose bounds are not ascending, a key whose metric
 * name another key already took with another type) is left out of the text rather than failing the scrape.
 */
public final class PrometheusMetrics {
    /** {@link VfioUserServer#resources()} keys that are levels, not counts. */
    static final Set<String> SERVER_GAUGES = Set.of("dma.maps", "dma.bytes", "dma.deferred", "irq.fds",
            "clients.connected");
    static final String SERVER_PREFIX = MetricName.PREFIX + "vfio_user_";
    private static final double NANOS_PER_SECOND = 1e9;
    private static final PrometheusTextFormatWriter WRITER =
            PrometheusTextFormatWriter.builder().setIncludeCreatedTimestamps(false).build();

    private PrometheusMetrics() {
    }

    /** The text for these servers, read now. */
    public static String renderServers(Collection<VfioUserServer> servers) {
        return render(servers.stream().map(ControllerSnapshot::of).toList());
    }

    /** The text for these snapshots, in the Prometheus text format. */
    public static String render(List<ControllerSnapshot> controllers) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            WRITER.write(out, collect(controllers), EscapingScheme.UNDERSCORE_ESCAPING);
        } catch (IOException e) {
            throw new UncheckedIOException(e); // a ByteArrayOutputStream does not fail
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    /** The library's model of these snapshots (what {@link MetricsEndpoint} serves). */
    public static MetricSnapshots collect(List<ControllerSnapshot> controllers) {
        Families families = new Families();
        for (ControllerSnapshot c : controllers) {
            Labels controller = Labels.of("controller", c.controller());
            c.server().forEach((key, value) -> families.add(MetricName.sanitize(SERVER_PREFIX + key),
                    SERVER_GAUGES.contains(key) ? Kind.GAUGE : Kind.COUNTER,
                    "vfio-user server resource " + key, controller, value));
            c.device().forEach((key, value) -> {
                MetricName m = MetricName.of(key);
                families.add(m.name(), m.gauge() ? Kind.GAUGE : Kind.COUNTER, "device statistic " + pattern(m, key),
                        labels(controller, m), value);
            });
            c.histograms().forEach((key, h) -> {
                MetricName m = MetricName.of(key);
                String name = m.name().endsWith("_seconds") ? m.name() : m.name() + "_seconds";
                families.addHistogram(name, "device latency histogram " + pattern(m, key) + ", in seconds",
                        labels(controller, m), h);
            });
        }
        return families.snapshots();
    }

    private static Labels labels(Labels controller, MetricName m) {
        return m.instanceLabel() == null ? controller : controller.add(m.instanceLabel(), m.instance());
    }

    /** The key with its instance number generalised ({@code sq<N>.commands}), for HELP lines. */
    private static String pattern(MetricName m, String key) {
        return m.instanceLabel() == null ? key : m.instanceLabel() + "<N>" + key.substring(key.indexOf('.'));
    }

    private enum Kind { COUNTER, GAUGE, HISTOGRAM }

    /** Data points grouped by metric name (one family per name, one point per label set). */
    private static final class Families {
        private final Map<String, Family> byName = new TreeMap<>();

        void add(String name, Kind kind, String help, Labels labels, long value) {
            Family f = family(name, kind, help);
            if (f == null || !f.labelSets.add(labels) || (kind == Kind.COUNTER && value < 0)) {
                return;
            }
            f.points.add(kind == Kind.COUNTER
                    ? CounterSnapshot.CounterDataPointSnapshot.builder().labels(labels).value(value).build()
                    : GaugeSnapshot.GaugeDataPointSnapshot.builder().labels(labels).value(value).build());
        }

        void addHistogram(String name, String help, Labels labels, Histogram h) {
            Family f = family(name, Kind.HISTOGRAM, help);
            if (f == null || f.labelSets.contains(labels)) {
                return;
            }
            ClassicHistogramBuckets buckets = buckets(h);
            if (buckets == null) {
                return;
            }
            f.labelSets.add(labels);
            f.points.add(HistogramSnapshot.HistogramDataPointSnapshot.builder().labels(labels)
                    .classicHistogramBuckets(buckets).sum(h.sumNanos() / NANOS_PER_SECOND).build());
        }

        /** The family of {@code name}, or null if the name is taken by a family of another kind. */
        private Family family(String name, Kind kind, String help) {
            Family f = byName.computeIfAbsent(name, n -> new Family(kind, help));
            return f.kind == kind ? f : null;
        }

        MetricSnapshots snapshots() {
            List<MetricSnapshot> all = new ArrayList<>();
            byName.forEach((name, f) -> {
                if (!f.points.isEmpty()) {
                    all.add(f.build(name));
                }
            });
            return new MetricSnapshots(all);
        }
    }

    /**
     * The plugin-api histogram as the library's classic buckets (bounds in seconds, per-bucket counts), or null
     * if it is malformed (bounds not strictly ascending, a negative count); a last bound that is not open-ended
     * gets an empty {@code +Inf} bucket after it, which Prometheus requires.
     */
    static ClassicHistogramBuckets buckets(Histogram h) {
        long[] bounds = h.upperBoundsNanos();
        long[] counts = h.counts();
        ClassicHistogramBuckets.Builder b = ClassicHistogramBuckets.builder();
        for (int i = 0; i < bounds.length; i++) {
            if (counts[i] < 0 || (i > 0 && bounds[i] <= bounds[i - 1])) {
                return null;
            }
            b.bucket(bounds[i] == Long.MAX_VALUE ? Double.POSITIVE_INFINITY : bounds[i] / NANOS_PER_SECOND, counts[i]);
        }
        if (bounds[bounds.length - 1] != Long.MAX_VALUE) {
            b.bucket(Double.POSITIVE_INFINITY, 0);
        }
        try {
            return b.build();
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    private static final class Family {
        final Kind kind;
        final String help;
        final Set<Labels> labelSets = new HashSet<>();
        final List<DataPointSnapshot> points = new ArrayList<>();

        Family(Kind kind, String help) {
            this.kind = kind;
            this.help = help;
        }

        MetricSnapshot build(String name) {
            switch (kind) {
                case COUNTER -> {
                    CounterSnapshot.Builder b = CounterSnapshot.builder().name(name).help(help);
                    points.forEach(p -> b.dataPoint((CounterSnapshot.CounterDataPointSnapshot) p));
                    return b.build();
                }
                case GAUGE -> {
                    GaugeSnapshot.Builder b = GaugeSnapshot.builder().name(name).help(help);
                    points.forEach(p -> b.dataPoint((GaugeSnapshot.GaugeDataPointSnapshot) p));
                    return b.build();
                }
                default -> {
                    HistogramSnapshot.Builder b = HistogramSnapshot.builder().name(name).help(help);
                    points.forEach(p -> b.dataPoint((HistogramSnapshot.HistogramDataPointSnapshot) p));
                    return b.build();
                }
            }
        }
    }
}
