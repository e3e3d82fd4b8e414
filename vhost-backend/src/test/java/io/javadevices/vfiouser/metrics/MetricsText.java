package io.javadevices.vfiouser.metrics;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The Prometheus text format (0.0.4) read back line by line, as a scraper reads it: {@code # TYPE} lines and
 * samples {@code name{label="value",...} number}. The client library has no parser of its own; this one is
 * strict enough that a malformed line fails the test.
 */
final class MetricsText {
    private static final Pattern TYPE = Pattern.compile("# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)");
    private static final Pattern SAMPLE = Pattern.compile("([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{(.*)})? (\\S+)");
    private static final Pattern LABEL = Pattern.compile("([a-zA-Z_][a-zA-Z0-9_]*)=\"((?:[^\"\\\\]|\\\\.)*)\",?");

    /** A sample's metric name and labels, e.g. {@code javadevices_sq_commands_total{controller=...,sq=3}}. */
    record Series(String name, Map<String, String> labels) {
    }

    final Map<String, String> types = new HashMap<>();
    final Map<Series, Double> samples = new LinkedHashMap<>();

    static MetricsText parse(String text) {
        MetricsText t = new MetricsText();
        for (String line : text.split("\n")) {
            if (line.isEmpty() || line.startsWith("# HELP ")) {
                continue;
            }
            Matcher type = TYPE.matcher(line);
            if (type.matches()) {
                if (t.types.put(type.group(1), type.group(2)) != null) {
                    throw new AssertionError("family declared twice: " + line);
                }
                continue;
            }
            Matcher sample = SAMPLE.matcher(line);
            if (!sample.matches()) {
                throw new AssertionError("not a sample line: " + line);
            }
            Map<String, String> labels = new LinkedHashMap<>();
            if (sample.group(3) != null) {
                Matcher l = LABEL.matcher(sample.group(3));
                int end = 0;
                while (l.find() && l.start() == end) {
                    labels.put(l.group(1), l.group(2).replace("\\\"", "\"").replace("\\n", "\n").replace("\\\\", "\\"));
                    end = l.end();
                }
                if (end != sample.group(3).length()) {
                    throw new AssertionError("bad labels: " + line);
                }
            }
            if (t.samples.put(new Series(sample.group(1), labels), Double.parseDouble(sample.group(4)
                    .replace("+Inf", "Infinity"))) != null) {
                throw new AssertionError("series twice: " + line);
            }
        }
        return t;
    }

    /** The value of one series; fails if absent. */
    double value(String name, String... labelPairs) {
        Map<String, String> labels = new LinkedHashMap<>();
        for (int i = 0; i < labelPairs.length; i += 2) {
            labels.put(labelPairs[i], labelPairs[i + 1]);
        }
        Double v = samples.get(new Series(name, labels));
        if (v == null) {
            throw new AssertionError("no series " + name + labels + " in " + samples.keySet());
        }
        return v;
    }

    boolean has(String name) {
        return samples.keySet().stream().anyMatch(s -> s.name().equals(name));
    }
}
