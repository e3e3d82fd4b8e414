package io.javadevices.qemutests.bench;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.style.Styler;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Collects benchmark samples (configuration → metric → one value per round) and writes them as a
 * table, JSON and a PNG bar chart (XChart). Medians are reported with the min–max spread.
 */
public final class BenchmarkReport {
    private final Map<String, Map<String, List<Double>>> samples = new LinkedHashMap<>();
    private final Map<String, String> labels = new LinkedHashMap<>();
    private final Map<String, String> environment = new LinkedHashMap<>();
    private final Map<String, Ratio> ratios = new LinkedHashMap<>();

    /** A comparison the benchmark states: {@code value} of a ratio of medians against its target. */
    public record Ratio(double value, double target, boolean met) {
    }

    public void describe(String configuration, String label) {
        labels.put(configuration, label);
        samples.computeIfAbsent(configuration, k -> new LinkedHashMap<>());
    }

    public void environment(String key, String value) {
        environment.put(key, value);
    }

    /** The environment entries so far, in the order they were added. */
    public Map<String, String> environment() {
        return java.util.Collections.unmodifiableMap(environment);
    }

    public void add(String configuration, String metric, double value) {
        samples.computeIfAbsent(configuration, k -> new LinkedHashMap<>())
                .computeIfAbsent(metric, k -> new ArrayList<>()).add(value);
    }

    /**
     * Records the ratio {@code name} (e.g. {@code F-java/F-qemu randread QD32}) of two medians and whether it
     * reaches {@code atLeast}; NaN (a configuration without numbers) never meets its target.
     */
    public Ratio ratio(String name, double value, double atLeast) {
        Ratio r = new Ratio(value, atLeast, !Double.isNaN(value) && value >= atLeast);
        ratios.put(name, r);
        return r;
    }

    public Map<String, Ratio> ratios() {
        return Map.copyOf(ratios);
    }

    public double median(String configuration, String metric) {
        List<Double> v = values(configuration, metric);
        if (v.isEmpty()) {
            return Double.NaN;
        }
        double[] sorted = v.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    public List<Double> values(String configuration, String metric) {
        return samples.getOrDefault(configuration, Map.of()).getOrDefault(metric, List.of());
    }

    private String spread(String configuration, String metric) {
        List<Double> v = values(configuration, metric);
        if (v.isEmpty()) {
            return "-";
        }
        double min = v.stream().mapToDouble(Double::doubleValue).min().orElse(0);
        double max = v.stream().mapToDouble(Double::doubleValue).max().orElse(0);
        return fmt(min) + "–" + fmt(max);
    }

    private static String fmt(double d) {
        if (Double.isNaN(d)) {
            return "n/a";
        }
        if (Math.abs(d) >= 100) {
            return String.format(Locale.ROOT, "%.0f", d);
        }
        return String.format(Locale.ROOT, "%.3f", d);
    }

    /** A Markdown table: one row per configuration, median (min–max) per metric. */
    public String table(List<String> metrics) {
        return table(List.copyOf(samples.keySet()), metrics);
    }

    /** A Markdown table of the given configurations only (e.g. the Java ones for server-side metrics). */
    public String table(List<String> configurations, List<String> metrics) {
        StringBuilder sb = new StringBuilder("| configuration |");
        for (String m : metrics) {
            sb.append(' ').append(m).append(" |");
        }
        sb.append("\n|---|");
        sb.append("---|".repeat(metrics.size())).append('\n');
        for (String c : configurations) {
            sb.append("| ").append(labels.getOrDefault(c, c)).append(" |");
            for (String m : metrics) {
                sb.append(' ').append(fmt(median(c, m))).append(" (").append(spread(c, m)).append(") |");
            }
            sb.append('\n');
        }
        return sb.toString();
    }

    public void writeJson(Path file) throws IOException {
        StringBuilder sb = new StringBuilder("{\n  \"environment\": {");
        sb.append(String.join(",", environment.entrySet().stream()
                .map(e -> "\n    \"" + esc(e.getKey()) + "\": \"" + esc(e.getValue()) + "\"").toList()));
        sb.append("\n  },\n  \"configurations\": {");
        List<String> configs = new ArrayList<>();
        for (var c : samples.entrySet()) {
            StringBuilder cs = new StringBuilder("\n    \"" + esc(c.getKey()) + "\": {\n      \"label\": \""
                    + esc(labels.getOrDefault(c.getKey(), c.getKey())) + "\"");
            for (var m : c.getValue().entrySet()) {
                cs.append(",\n      \"").append(esc(m.getKey())).append("\": {\"median\": ")
                        .append(json(median(c.getKey(), m.getKey()))).append(", \"rounds\": ")
                        .append(Arrays.toString(m.getValue().stream().map(BenchmarkReport::json).toArray())).append('}');
            }
            configs.add(cs.append("\n    }").toString());
        }
        sb.append(String.join(",", configs)).append("\n  }");
        if (!ratios.isEmpty()) {
            sb.append(",\n  \"ratios\": {");
            sb.append(String.join(",", ratios.entrySet().stream().map(e -> "\n    \"" + esc(e.getKey())
                    + "\": {\"value\": " + json(e.getValue().value()) + ", \"target.at.least\": "
                    + json(e.getValue().target()) + ", \"met\": " + e.getValue().met() + "}").toList()));
            sb.append("\n  }");
        }
        sb.append("\n}\n");
        Files.writeString(file, sb.toString());
    }

    private static String json(double d) {
        return Double.isNaN(d) || Double.isInfinite(d) ? "null" : String.format(Locale.ROOT, "%.4f", d);
    }

    private static String esc(String s) {
        return s.replace("\\", "\\\\").replace("\"", "\\\"");
    }

    /** A PNG bar chart of one metric's medians per configuration. */
    public void writeChart(Path file, String metric, String title, String yAxis) throws IOException {
        writeChart(file, List.of(metric), List.of(metric), title, yAxis);
    }

    /**
     * A PNG bar chart with one group of bars per configuration and one bar (series, with a legend) per metric,
     * e.g. randread and randwrite IOPS side by side. Configurations without a number for any of the metrics are
     * left out (XChart needs the same categories in every series).
     */
    public void writeChart(Path file, List<String> metrics, List<String> seriesNames, String title, String yAxis)
            throws IOException {
        // Wide enough for five long configuration names, tilted so that they never overlap.
        CategoryChart chart = new CategoryChartBuilder().width(Math.max(900, 220 * samples.size())).height(560)
                .title(title).xAxisTitle("configuration").yAxisTitle(yAxis).build();
        chart.getStyler().setXAxisLabelRotation(12);
        chart.getStyler().setLegendVisible(metrics.size() > 1);
        chart.getStyler().setLabelsVisible(true);
        chart.getStyler().setChartTitleVisible(true);
        // Outside, right of the bars, when there is a legend: inside it would cover the first group.
        chart.getStyler().setLegendPosition(metrics.size() > 1 ? Styler.LegendPosition.OutsideE : Styler.LegendPosition.InsideNW);
        List<String> names = new ArrayList<>();
        List<String> configurations = new ArrayList<>();
        for (String c : samples.keySet()) {
            if (metrics.stream().noneMatch(m -> Double.isNaN(median(c, m)))) {
                names.add(labels.getOrDefault(c, c));
                configurations.add(c);
            }
        }
        if (names.isEmpty()) {
            return; // nothing measured: no chart rather than an empty one that looks like a result
        }
        for (int i = 0; i < metrics.size(); i++) {
            String metric = metrics.get(i);
            chart.addSeries(seriesNames.get(i), names, configurations.stream().map(c -> median(c, metric)).toList());
        }
        BitmapEncoder.saveBitmap(chart, file.toString(), BitmapEncoder.BitmapFormat.PNG);
    }
}
