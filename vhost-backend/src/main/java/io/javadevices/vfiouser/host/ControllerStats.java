package io.javadevices.vfiouser.host;

import io.javadevices.pci.Histogram;
import io.javadevices.pci.PciDevice;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One controller's statistics as the control plane's {@code stats_get} returns them: the transport's counters,
 * then the device's, split by the key convention of {@link PciDevice} (a first part of lower-case letters and a
 * number is an instance: {@code sq3.commands} is queue 3's {@code commands}, {@code ns1.latency.p99-us} namespace
 * 1's {@code latency.p99-us}), and its histograms. Values are the device's own names, unchanged.
 */
public final class ControllerStats {
    /** The first key part of a per-instance value: kind letters, then the instance number. */
    private static final Pattern INSTANCE = Pattern.compile("([a-z]+)([0-9]+)\\.(.+)");

    private ControllerStats() {
    }

    /**
     * {@code {"socket":..,"server":{..},"device":{..},"queues":{"1":{..}},"namespaces":{"1":{..}},"histograms":{..}}};
     * instances of another kind than {@code sq} or {@code ns} go under their kind's letters (e.g. {@code "cq"}).
     */
    public static Map<String, Object> json(Controller controller) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("socket", controller.socket().toString());
        out.put("server", new LinkedHashMap<>(controller.resources()));
        Map<String, Object> deviceWide = new LinkedHashMap<>();
        Map<String, Map<String, Map<String, Object>>> instances = new LinkedHashMap<>();
        instances.put("queues", new TreeMap<>(ControllerStats::byNumber));
        instances.put("namespaces", new TreeMap<>(ControllerStats::byNumber));
        PciDevice device = controller.device();
        for (Map.Entry<String, Long> e : new TreeMap<>(device.statistics()).entrySet()) {
            Matcher m = INSTANCE.matcher(e.getKey());
            if (!m.matches()) {
                deviceWide.put(e.getKey(), e.getValue());
                continue;
            }
            String group = switch (m.group(1)) {
                case "sq" -> "queues";
                case "ns" -> "namespaces";
                default -> m.group(1);
            };
            instances.computeIfAbsent(group, g -> new TreeMap<>(ControllerStats::byNumber))
                    .computeIfAbsent(m.group(2), n -> new LinkedHashMap<>())
                    .put(m.group(3), e.getValue());
        }
        out.put("device", deviceWide);
        out.putAll(instances);
        Map<String, Object> histograms = new LinkedHashMap<>();
        new TreeMap<>(device.histograms()).forEach((name, h) -> histograms.put(name, histogram(h)));
        out.put("histograms", histograms);
        return out;
    }

    private static Map<String, Object> histogram(Histogram h) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("bounds_ns", longs(h.upperBoundsNanos()));
        out.put("counts", longs(h.counts()));
        out.put("sum_ns", h.sumNanos());
        return out;
    }

    private static List<Object> longs(long[] values) {
        List<Object> list = new ArrayList<>(values.length);
        for (long v : values) {
            list.add(v);
        }
        return list;
    }

    /** Instance numbers in numeric order (2 before 10); the keys are digit strings. */
    private static int byNumber(String a, String b) {
        return a.length() != b.length() ? Integer.compare(a.length(), b.length()) : a.compareTo(b);
    }
}
