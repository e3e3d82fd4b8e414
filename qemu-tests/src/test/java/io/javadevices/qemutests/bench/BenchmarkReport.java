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

    public void describe(String configuration, String label) {
        labels.put(configuration, label);
        samples.computeIfAbsent(configuration, k -> new LinkedHashMap<>());
    }

    public void environment(String key, String value) {
        environment.put(key, value);
    }

    public void add(String configuration, String metric, double value) {
        samples.computeIfAbsent(configuration, k -> new LinkedHashMap<>())
                .computeIfAbsent(metric, k -> new ArrayList<>()).add(value);
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
        StringBuilder sb = new StringBuilder("| configuration |");
        for (String m : metrics) {
            sb.append(' ').append(m).append(" |");
        }
        sb.append("\n|---|");
        sb.append("---|".repeat(metrics.size())).append('\n');
        for (String c : samples.keySet()) {
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
        sb.append(String.join(",", configs)).append("\n  }\n}\n");
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
        // Wide enough for five long configuration names, tilted so that they never overlap.
        CategoryChart chart = new CategoryChartBuilder().width(Math.max(900, 220 * samples.size())).height(560)
                .title(title).xAxisTitle("configuration").yAxisTitle(yAxis).build();
        chart.getStyler().setXAxisLabelRotation(12);
        chart.getStyler().setLegendVisible(false);
        chart.getStyler().setLabelsVisible(true);
        chart.getStyler().setChartTitleVisible(true);
        chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNW);
        List<String> names = new ArrayList<>();
        List<Double> medians = new ArrayList<>();
        for (String c : samples.keySet()) {
            double m = median(c, metric);
            if (!Double.isNaN(m)) {
                names.add(labels.getOrDefault(c, c));
                medians.add(m);
            }
        }
        chart.addSeries(metric, names, medians);
        BitmapEncoder.saveBitmap(chart, file.toString(), BitmapEncoder.BitmapFormat.PNG);
    }
}
