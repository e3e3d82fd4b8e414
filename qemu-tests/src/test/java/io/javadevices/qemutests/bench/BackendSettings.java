package io.javadevices.qemutests.bench;

import io.javadevices.nvme.NvmeOptions;
import io.javadevices.qemutests.harness.GuestImage;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The knobs of {@link BackendBenchmark}, from system properties (Maven passes {@code -Dbench.*} through):
 *
 * <ul>
 *   <li>{@code bench.rounds} (3), {@code bench.seconds} (10: each fio run), {@code bench.warmup} (2: an unmeasured
 *       randrw run first, so that the JIT has compiled the Java device's I/O path before anything is measured),
 *       {@code bench.cpus} (2 vCPUs = fio jobs = the Java device's queues);</li>
 *   <li>{@code bench.configs} (all of {@link BackendConfig}, comma-separated ids such as {@code F-qemu,F-java});</li>
 *   <li>{@code bench.size} (1G: the image and the nbdkit memory export), {@code bench.delay} (5ms: the nbdkit delay
 *       filter's {@code rdelay}/{@code wdelay} for the latency-bound export). The delay has to put depth ÷ latency
 *       below what the guest can drive at all, or the L runs measure the guest's CPU instead of the latency: QEMU's
 *       NBD client keeps at most 16 requests in flight ({@code MAX_NBD_REQUESTS} in QEMU's block/nbd.c), so its
 *       bound is 16 ÷ delay, and a TCG guest's own ceiling lies below 16 ÷ 1 ms. Under KVM a shorter delay is
 *       latency-bound too;</li>
 *   <li>{@code bench.java.file} ({@code file:{img}?direct=on}), {@code bench.java.nbd}
 *       ({@code nbd+unix:///?socket={sock}}): the Java device's namespace for the file and NBD configurations,
 *       {@code {img}} and {@code {sock}} replaced by the image and the socket;</li>
 *   <li>{@code bench.java.sync} ({@code io-engine=sync}): the options that make L-java-sync one command at a time
 *       per queue; an option this build does not know is dropped (its code is then that design) and the label
 *       says so; a value the build refuses fails L-java-sync (only), naming it;</li>
 *   <li>{@code bench.options}: extra NVMe options for every Java configuration, {@code key=value;key=value};</li>
 *   <li>{@code bench.dir} (java.io.tmpdir): where the image, sockets and guest files live; it must support
 *       O_DIRECT (not tmpfs); {@code bench.out} (module's {@code benchmark-results}): where the results go.</li>
 * </ul>
 */
record BackendSettings(int rounds, int seconds, int warmup, int cpus, List<BackendConfig> configs, long sizeBytes,
                       String delay, String javaFileSpec, String javaNbdSpec, Map<String, String> syncOptions,
                       List<String> syncOptionsDropped, String syncOptionsRefused, Map<String, String> extraOptions,
                       Path dir, Path out) {

    static BackendSettings fromSystemProperties() {
        int rounds = positive("bench.rounds", 3);
        int seconds = positive("bench.seconds", 10);
        int warmup = Integer.getInteger("bench.warmup", 2);
        int cpus = positive("bench.cpus", 2);
        List<BackendConfig> configs = new ArrayList<>();
        for (String id : System.getProperty("bench.configs", "").split(",")) {
            if (!id.isBlank()) {
                configs.add(BackendConfig.byId(id.trim()));
            }
        }
        if (configs.isEmpty()) {
            configs.addAll(List.of(BackendConfig.values()));
        }
        long size = NvmeOptions.parseSize(System.getProperty("bench.size", "1G"), "bench.size");
        String delay = System.getProperty("bench.delay", "5ms").trim();
        // nbdkit 1.32 (Debian 12) reads "0.2ms" as 0 ms without a word; whole seconds or milliseconds only.
        if (!delay.matches("[0-9]+(ms)?")) {
            throw new IllegalArgumentException("bench.delay must be whole seconds or milliseconds (e.g. 1ms, 2): '"
                    + delay + "' (nbdkit's delay filter silently rounds fractions down to 0)");
        }
        Map<String, String> sync = pairs("bench.java.sync", "io-engine=sync");
        Map<String, String> supportedSync = new LinkedHashMap<>();
        List<String> dropped = new ArrayList<>();
        List<String> refused = new ArrayList<>();
        sync.forEach((k, v) -> {
            String problem = optionProblem(k, v);
            if (problem == null) {
                supportedSync.put(k, v);
            } else if (problem.startsWith("unknown nvme option '" + k + "'")) {
                dropped.add(k + "=" + v);
            } else {
                refused.add(k + "=" + v + ": " + problem);
            }
        });
        Path dir = Path.of(System.getProperty("bench.dir", System.getProperty("java.io.tmpdir")));
        Path out = Path.of(System.getProperty("bench.out", GuestImage.moduleDir().resolve("benchmark-results").toString()));
        return new BackendSettings(rounds, seconds, warmup, cpus, List.copyOf(configs), size, delay,
                System.getProperty("bench.java.file", "file:{img}?direct=on"),
                System.getProperty("bench.java.nbd", "nbd+unix:///?socket={sock}"),
                Map.copyOf(supportedSync), List.copyOf(dropped), refused.isEmpty() ? null : String.join("; ", refused),
                pairs("bench.options", ""), dir, out);
    }

    /**
     * Why this build's NVMe device refuses option {@code key=value}, or null if it takes it. NvmeOptions checks
     * the keys before anything else, so on a null namespace "unknown nvme option" means the build lacks the
     * option (its queues then execute one command at a time: the design L-java-sync stands for), and any other
     * message that it has the option but not this value (L-java-sync then fails, naming it).
     */
    private static String optionProblem(String key, String value) {
        try {
            NvmeOptions.parse(Map.of("namespaces", "null:1M", key, value));
            return null;
        } catch (IllegalArgumentException e) {
            return String.valueOf(e.getMessage());
        }
    }

    /** True when the Java file namespace uses O_DIRECT (else it reads through the host's page cache). */
    boolean javaFileDirect() {
        return javaFileSpec.contains("direct=on");
    }

    private static int positive(String property, int fallback) {
        int v = Integer.getInteger(property, fallback);
        if (v < 1) {
            throw new IllegalArgumentException(property + " must be at least 1: " + v);
        }
        return v;
    }

    private static Map<String, String> pairs(String property, String fallback) {
        Map<String, String> m = new LinkedHashMap<>();
        for (String kv : System.getProperty(property, fallback).split(";")) {
            if (!kv.isBlank()) {
                String[] p = kv.split("=", 2);
                m.put(p[0].trim(), p.length > 1 ? p[1].trim() : "");
            }
        }
        return m;
    }
}
