package io.javadevices.vfiouser.metrics;

import io.prometheus.metrics.model.snapshots.PrometheusNaming;

import java.util.Locale;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A statistic's key turned into a Prometheus metric name, instance label and type, by the key convention of
 * {@code io.javadevices.pci.PciDevice}: a key whose first dot-separated part is lower-case letters followed by a
 * number is per instance ({@code sq3.commands}: metric {@code javadevices_sq_commands} with label {@code sq="3"}),
 * every other key is device-wide ({@code io.commands}: {@code javadevices_io_commands}). Dots and dashes become
 * underscores (then anything else Prometheus does not allow, through the library's own
 * {@link PrometheusNaming#sanitizeMetricName}).
 *
 * <p><b>Counter or gauge.</b> The plugin API says statistics are monotonic "unless the name says otherwise", so
 * the rule reads the name: a key is a <em>gauge</em> when its last dot-separated word, without a unit suffix
 * ({@code -us}, {@code -ms}, {@code -ns}, {@code -bytes}), is one of the level or state words in
 * {@link #GAUGE_WORDS} (e.g. {@code ns1.inflight}, {@code dbbuf.active}, {@code io.queues},
 * {@code ns1.inflight.max}) or a percentile ({@code p50}, {@code p99}, {@code p999}: {@code ns1.latency.p99-us});
 * every other key is a <em>counter</em> (exported with the {@code _total} suffix the text format gives counters).
 *
 * @param name          the metric family name, e.g. {@code javadevices_sq_commands}
 * @param instanceLabel the instance kind ({@code sq}, {@code ns}) or null for a device-wide key
 * @param instance      the instance number as text, or null
 * @param gauge         true for a gauge, false for a counter
 */
record MetricName(String name, String instanceLabel, String instance, boolean gauge) {
    /** The metric names' common prefix. */
    static final String PREFIX = "javadevices_";

    /** Last words that name a level or a state rather than a count of events. */
    static final Set<String> GAUGE_WORDS = Set.of("active", "connected", "current", "depth", "enabled", "failed",
            "inflight", "level", "max", "min", "polled", "queues", "size", "uring");

    private static final Pattern INSTANCE = Pattern.compile("([a-z]+)([0-9]+)");
    private static final Pattern PERCENTILE = Pattern.compile("p[0-9]+");
    private static final Pattern UNIT = Pattern.compile("-(us|ms|ns|bytes)$");

    /** The metric for a device statistic or histogram key ({@code ns1.latency}). */
    static MetricName of(String key) {
        String rest = key;
        String label = null;
        String instance = null;
        int dot = key.indexOf('.');
        if (dot > 0) {
            Matcher m = INSTANCE.matcher(key.substring(0, dot));
            if (m.matches()) {
                label = m.group(1);
                instance = String.valueOf(Long.parseLong(m.group(2))); // "sq03" and "sq3" are one instance
                rest = m.group(1) + key.substring(dot);
            }
        }
        return new MetricName(sanitize(PREFIX + rest), label, instance, isGauge(key));
    }

    /** The Prometheus name of {@code text}: dots and dashes as underscores, then the library's sanitizer. */
    static String sanitize(String text) {
        return PrometheusNaming.sanitizeMetricName(text.toLowerCase(Locale.ROOT).replace('.', '_').replace('-', '_'));
    }

    /** The counter-or-gauge rule of this class's comment. */
    static boolean isGauge(String key) {
        String last = key.substring(key.lastIndexOf('.') + 1);
        last = UNIT.matcher(last).replaceFirst("");
        return GAUGE_WORDS.contains(last) || PERCENTILE.matcher(last).matches();
    }
}
