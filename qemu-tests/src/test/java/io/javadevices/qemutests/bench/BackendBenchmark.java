package io.javadevices.qemutests.bench;

import com.sun.nio.file.ExtendedOpenOption;
import io.javadevices.qemutests.harness.Accelerator;
import io.javadevices.qemutests.harness.GuestImage;
import io.javadevices.qemutests.harness.JavaNvmeServer;
import io.javadevices.qemutests.harness.NbdServer;
import io.javadevices.qemutests.harness.QemuGuest;
import io.javadevices.qemutests.harness.ThreadTimes;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * The backends a storage engineer deploys, the Java NVMe against QEMU's own NVMe on the same storage: a raw
 * image with O_DIRECT (F), a {@code qemu-nbd} export of one (N), and a latency-bound {@code nbdkit} export (L),
 * see {@link BackendConfig}. Not part of {@code mvn verify}: run it with
 * {@code qemu-tests/run-benchmark -Dbench.suite=backends} (Maven profile {@code benchmark}).
 *
 * <p>Rounds are interleaved (round 1: every configuration, round 2: every configuration, ...) so that a change
 * in the machine's load spreads over all of them, and every second round runs them in reverse order (F-qemu,
 * F-java, ... then ..., F-java, F-qemu), so that neither side of a pair always runs right after the other's
 * configuration or right after a guest of another backend (an ABBA design: drift and carry-over from the run
 * before cancel out over two rounds); each run boots its own guest (same image, QEMU, vCPUs and
 * fio runtime) and, for NBD, its own server. The guest runs {@link BackendWorkload}; for the Java device the
 * server's counters over each QD32 run give MMIO doorbells and interrupts per I/O, the JVM's CPU seconds per
 * million I/Os and, when the device reports {@code ns1.inflight.max}, the deepest in-flight count its backend
 * reached. Medians (with min–max) go to {@code backends.json}, {@code backends.md} and two PNG charts in
 * {@code bench.out}, with the ratios the issue sets targets for. Knobs: {@link BackendSettings}.
 *
 * <p>A failing run (an NBD server that did not start, a guest that reported no numbers) does not stop the
 * others; the results are written, then the benchmark fails naming every failed run and every configuration
 * without numbers, so a broken run cannot pass for a slow one. The benchmark measures; it does not judge
 * (targets are printed next to the ratios, not asserted).
 */
class BackendBenchmark {
    /** A ratio of QD32 IOPS medians the issue sets a target for. */
    private record Comparison(BackendConfig numerator, BackendConfig denominator, double atLeast) {
    }

    private static final List<Comparison> COMPARISONS = List.of(
            new Comparison(BackendConfig.F_JAVA, BackendConfig.F_QEMU, 1.0),
            new Comparison(BackendConfig.N_JAVA, BackendConfig.N_QEMU, 1.0),
            new Comparison(BackendConfig.L_JAVA, BackendConfig.L_QEMU, 0.9),
            new Comparison(BackendConfig.L_JAVA, BackendConfig.L_JAVA_SYNC, 10));

    private static final List<String> GUEST_METRICS = List.of("iops.randread.qd32", "iops.randwrite.qd32",
            "lat.randread.qd1.p50.us", "lat.randread.qd1.p99.us", "lat.randwrite.qd1.p50.us", "lat.randwrite.qd1.p99.us",
            "guest.irqs.per.io.randread.qd32", "guest.irqs.per.io.randwrite.qd32");
    private static final List<String> SERVER_METRICS = List.of("inflight.max.randread.qd32", "inflight.max.randwrite.qd32",
            "mmio.doorbells.per.io.randread.qd32", "mmio.doorbells.per.io.randwrite.qd32",
            "interrupts.per.io.randread.qd32", "interrupts.per.io.randwrite.qd32",
            "jvm.cpu.s.per.mio.randread.qd32", "jvm.cpu.s.per.mio.randwrite.qd32");

    @Test
    void backends() throws Exception {
        BackendSettings s = BackendSettings.fromSystemProperties();
        Files.createDirectories(s.dir());
        Path base = Files.createTempDirectory(s.dir(), "backends-");
        try {
            run(s, base);
        } finally {
            deleteTree(base);
        }
    }

    private void run(BackendSettings s, Path base) throws Exception {
        long started = System.nanoTime();
        BenchmarkReport report = new BenchmarkReport();
        s.configs().forEach(c -> report.describe(c.id(), c.label(s)));
        Path image = base.resolve("disk.img");
        prepare(s, base, image, report);

        List<String> failures = new ArrayList<>();
        for (int round = 1; round <= s.rounds(); round++) {
            List<BackendConfig> order = new ArrayList<>(s.configs());
            if (round % 2 == 0) {
                Collections.reverse(order);
            }
            for (BackendConfig c : order) {
                System.out.printf("[bench] round %d/%d, configuration %s%n", round, s.rounds(), c.label(s));
                try {
                    Map<String, Double> m = runOne(c, round, s, base, image, report);
                    m.forEach((metric, value) -> report.add(c.id(), metric, value));
                } catch (Exception | AssertionError e) {
                    if (e instanceof InterruptedException) {
                        throw e;
                    }
                    String message = c.id() + " round " + round + ": " + e.getMessage();
                    failures.add(message.lines().findFirst().orElse(message));
                    System.out.println("[bench] FAILED " + message);
                }
            }
        }
        double minutes = (System.nanoTime() - started) / 60e9;
        report.environment("elapsed.minutes", String.format(Locale.ROOT, "%.1f", minutes));
        write(s, report);

        List<String> empty = s.configs().stream().map(BackendConfig::id)
                .filter(id -> !(report.median(id, "iops.randread.qd32") > 0)).toList();
        if (!failures.isEmpty() || !empty.isEmpty()) {
            fail("configurations without numbers: " + (empty.isEmpty() ? "none" : String.join(", ", empty))
                    + "; failed runs:\n  " + String.join("\n  ", failures));
        }
    }

    /** The environment, the tools the chosen configurations need, and the image (on a file system with O_DIRECT). */
    private static void prepare(BackendSettings s, Path base, Path image, BenchmarkReport report) throws Exception {
        report.environment("date", LocalDate.now().toString());
        report.environment("accelerator", Accelerator.choose().toString());
        report.environment("image", GuestImage.tag());
        report.environment("host.cpus", Integer.toString(Runtime.getRuntime().availableProcessors()));
        report.environment("host.cpu", SeedBenchmark.cpuModel());
        report.environment("host.kernel", System.getProperty("os.version"));
        report.environment("guest.vcpus", Integer.toString(s.cpus()));
        report.environment("java.queues", Integer.toString(s.cpus()));
        report.environment("rounds", Integer.toString(s.rounds()));
        report.environment("fio.seconds", Integer.toString(s.seconds()));
        report.environment("fio.warmup.seconds", Integer.toString(s.warmup()));
        report.environment("size.bytes", Long.toString(s.sizeBytes()));
        report.environment("dir", s.dir() + " (" + firstLine(List.of("stat", "-f", "-c", "%T", s.dir().toString()), "stat") + ")");
        report.environment("java", System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
        List<BackendConfig.Storage> storages = s.configs().stream().map(BackendConfig::storage).distinct().toList();
        if (storages.contains(BackendConfig.Storage.QEMU_NBD)) {
            report.environment("qemu-nbd", firstLine(List.of("qemu-nbd", "--version"), "qemu-nbd (N configurations)"));
        }
        if (storages.contains(BackendConfig.Storage.DELAYED_NBD)) {
            report.environment("nbdkit", firstLine(List.of("nbdkit", "--version"), "nbdkit (L configurations)"));
            report.environment("nbdkit.delay", s.delay() + " per read and per write, " + BackendConfig.NBDKIT_THREADS + " threads");
        }
        if (s.configs().contains(BackendConfig.F_JAVA)) {
            report.environment("java.file", s.javaFileSpec() + (s.javaFileDirect() ? "" : " (no O_DIRECT: page cache)"));
        }
        if (s.configs().stream().anyMatch(c -> c.java() && c.storage() != BackendConfig.Storage.FILE)) {
            report.environment("java.nbd", s.javaNbdSpec());
        }
        if (s.configs().contains(BackendConfig.L_JAVA_SYNC)) {
            report.environment("java.sync.options", s.syncOptions().toString() + (s.syncOptionsDropped().isEmpty() ? ""
                    : "; not known to this build, so left out (its queues execute one command at a time anyway): "
                    + s.syncOptionsDropped()) + (s.syncOptionsRefused() == null ? "" : "; REFUSED: " + s.syncOptionsRefused()));
        }
        if (s.configs().stream().anyMatch(BackendConfig::java)) {
            if (!s.extraOptions().isEmpty()) {
                report.environment("java.options", s.extraOptions().toString());
            }
        }
        if (storages.contains(BackendConfig.Storage.FILE) || storages.contains(BackendConfig.Storage.QEMU_NBD)) {
            writeImage(image, s.sizeBytes());
            requireDirectIo(image);
        }
    }

    /** Fills the raw image with data, so that reads reach the disk instead of being answered from holes. */
    private static void writeImage(Path image, long size) throws IOException {
        System.out.printf("[bench] writing a %d MiB image %s%n", size >> 20, image);
        ByteBuffer chunk = ByteBuffer.allocateDirect(1 << 20);
        SplittableRandom random = new SplittableRandom(14);
        while (chunk.hasRemaining()) {
            chunk.putLong(random.nextLong());
        }
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            for (long pos = 0; pos < size; pos += chunk.capacity()) {
                chunk.clear().putLong(0, pos); // every MiB distinct
                chunk.limit((int) Math.min(chunk.capacity(), size - pos));
                while (chunk.hasRemaining()) {
                    ch.write(chunk, pos + chunk.position());
                }
            }
            ch.force(true);
        }
    }

    /** QEMU's cache=none and qemu-nbd's --cache=none open the image O_DIRECT; tmpfs, for one, refuses that. */
    private static void requireDirectIo(Path image) {
        ByteBuffer block = ByteBuffer.allocateDirect(8192).alignedSlice(4096).limit(4096);
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ, ExtendedOpenOption.DIRECT)) {
            ch.read(block, 0);
        } catch (IOException | UnsupportedOperationException e) {
            throw new IllegalStateException("the benchmark directory " + image.getParent() + " does not support O_DIRECT ("
                    + e + "): point -Dbench.dir at a directory on a disk file system (not tmpfs)", e);
        }
    }

    private static Map<String, Double> runOne(BackendConfig c, int round, BackendSettings s, Path base, Path image,
                                              BenchmarkReport report) throws Exception {
        String run = c.id() + round;
        Path runDir = Files.createDirectories(base.resolve(run));
        Path socket = runDir.resolve("nbd.sock");
        // The container sees the whole benchmark directory at /sock: the image, and each run's sockets below it.
        String guestSocket = QemuGuest.GUEST_SOCKET_DIR + "/" + run + "/nbd.sock";
        String guestImage = QemuGuest.GUEST_SOCKET_DIR + "/" + image.getFileName();
        QemuGuest.Spec spec = new QemuGuest.Spec("bench-" + run, base).cpus(s.cpus())
                .script(BackendWorkload.script(s.cpus(), s.seconds(), s.warmup()));
        Map<String, Double> m = new LinkedHashMap<>();
        List<String> setup = new ArrayList<>();
        NbdServer nbd = null;
        JavaNvmeServer server = null;
        try {
            List<String> nbdCommand = c.nbdServerCommand(s, socket, image);
            if (!nbdCommand.isEmpty()) {
                nbd = NbdServer.of(c.id() + " " + nbdCommand.getFirst(), socket, nbdCommand).start();
                setup.add("NBD server: `" + nbd.commandLine() + "`");
            }
            if (c.java()) {
                Map<String, String> options = new LinkedHashMap<>();
                options.put("namespaces", c.javaNamespace(s, image, socket));
                options.put("queues", Integer.toString(s.cpus()));
                options.putAll(s.extraOptions());
                if (c == BackendConfig.L_JAVA_SYNC) {
                    if (s.syncOptionsRefused() != null) {
                        throw new IllegalStateException("this build's NVMe device refuses the option meant to make its"
                                + " queues synchronous (" + s.syncOptionsRefused() + "): set -Dbench.java.sync to the"
                                + " options that do");
                    }
                    options.putAll(s.syncOptions());
                }
                setup.add("Java NVMe options: `" + options + "`");
                try {
                    server = JavaNvmeServer.start(runDir, options);
                } catch (RuntimeException e) {
                    throw new IllegalStateException("the Java NVMe server did not start with " + options + ": " + e, e);
                }
                spec.vfioUser(run + "/" + server.socketName());
            } else {
                List<String> args = c.qemuArgs(guestImage, guestSocket);
                spec.qemuArgs(args.toArray(String[]::new));
                setup.add("QEMU: `" + String.join(" ", args) + "`");
            }
            if (round == 1) {
                report.environment("setup." + c.id(), String.join("; ", setup).replace(base.toString(), "$DIR"));
            }
            try (QemuGuest guest = spec.start()) {
                if (server != null) {
                    serverCounters(c, s, guest, server, m);
                }
                guestResults(c, round, s, guest, m);
            }
            if (nbd != null && !nbd.isAlive()) {
                throw new IllegalStateException("the NBD server exited during the run");
            }
            return m;
        } catch (Exception | AssertionError e) {
            if (e instanceof InterruptedException) {
                throw e;
            }
            throw new AssertionError(e.getMessage()
                    + (server == null ? "" : "\nJava server log:\n" + server.logTail())
                    + (nbd == null ? "" : "\nNBD server output:\n" + nbd.logTail()), e);
        } finally {
            try {
                if (server != null) {
                    server.close();
                }
            } finally {
                if (nbd != null) {
                    nbd.close();
                }
            }
        }
    }

    /** The Java server's counters over each QD32 run, between the guest's start and done marks. */
    private static void serverCounters(BackendConfig c, BackendSettings s, QemuGuest guest, JavaNvmeServer server,
                                       Map<String, Double> m) throws InterruptedException {
        Duration phase = Duration.ofSeconds(s.seconds() + 120L);
        boolean first = true;
        for (BackendWorkload.Phase p : BackendWorkload.QD32) {
            // The first mark comes after boot and warm-up: minutes under TCG on a loaded machine.
            awaitMark(guest, p.key() + "-start", first ? Duration.ofMinutes(5) : phase);
            first = false;
            Map<String, Long> before = server.stats();
            long cpuBefore = processCpuNanos();
            ThreadTimes threadsBefore = ThreadTimes.now();
            awaitMark(guest, p.key() + "-done", phase);
            long cpu = processCpuNanos() - cpuBefore;
            ThreadTimes threads = ThreadTimes.now().since(threadsBefore);
            Map<String, Long> after = server.stats();
            double ios = delta(before, after, "io.commands");
            if (ios <= 0) {
                throw new AssertionError("the Java server counted no I/O commands during fio " + p.metric());
            }
            String metric = p.metric();
            m.put("mmio.doorbells.per.io." + metric,
                    (delta(before, after, "doorbell.mmio.sq") + delta(before, after, "doorbell.mmio.cq")) / ios);
            m.put("interrupts.per.io." + metric, delta(before, after, "interrupts") / ios);
            m.put("jvm.cpu.s.per.mio." + metric, cpu / 1e9 / (ios / 1e6));
            Long inflight = after.get("ns1.inflight.max");
            if (inflight != null) {
                m.put("inflight.max." + metric, inflight.doubleValue());
            }
            Map<String, Long> ns1 = new LinkedHashMap<>();
            after.forEach((k, v) -> {
                if (k.startsWith("ns1.")) {
                    ns1.put(k, v);
                }
            });
            System.out.printf("[bench] %s %s: %.0f I/O commands, namespace counters %s%n", c.id(), metric, ios, ns1);
            System.out.printf("[bench] %s %s: the JVM's threads per I/O%n%s", c.id(), metric, threads.perIo(ios));
        }
    }

    private static void awaitMark(QemuGuest guest, String mark, Duration timeout) throws InterruptedException {
        if (!guest.awaitOutput("@@MARK " + mark, timeout)) {
            throw new AssertionError("guest never printed @@MARK " + mark + " (within " + timeout.toSeconds()
                    + " s); console tail:\n" + guest.consoleTail(40));
        }
    }

    /** fio's numbers from the guest's report, once it powered off. */
    private static void guestResults(BackendConfig c, int round, BackendSettings s, QemuGuest guest,
                                     Map<String, Double> m) throws InterruptedException {
        QemuGuest.Outcome o = guest.awaitExit(Duration.ofSeconds(4L * s.seconds() + s.warmup() + 420));
        if (!o.finished()) {
            throw new AssertionError("guest did not finish:\n" + o.tail());
        }
        if (!"yes".equals(o.results().get("present.nvme0n1"))) {
            throw new AssertionError("the guest found no /dev/nvme0n1:\n" + o.tail());
        }
        for (BackendWorkload.Phase p : Stream.concat(BackendWorkload.QD32.stream(), BackendWorkload.QD1.stream()).toList()) {
            if (o.getLong("fio." + p.key() + ".rc") != 0 || o.getLong("fio." + p.key() + ".err") != 0) {
                throw new AssertionError("fio " + p.metric() + " failed (rc " + o.get("fio." + p.key() + ".rc") + ", errors "
                        + o.get("fio." + p.key() + ".err") + "):\n" + o.tail());
            }
        }
        for (BackendWorkload.Phase p : BackendWorkload.QD32) {
            long iops = o.getLong("fio." + p.key() + (p.reads() ? ".iops" : ".wiops"));
            double ios = o.getLong("fio." + p.key() + (p.reads() ? ".readkb" : ".writekb")) / 4.0; // 4 KiB each
            if (iops <= 0 || ios <= 0) {
                throw new AssertionError("fio " + p.metric() + " reported no I/O:\n" + o.tail());
            }
            m.put("iops." + p.metric(), (double) iops);
            m.put("guest.irqs.per.io." + p.metric(),
                    (o.getLong("irq." + p.key() + ".1") - o.getLong("irq." + p.key() + ".0")) / ios);
        }
        for (BackendWorkload.Phase p : BackendWorkload.QD1) {
            for (String pct : List.of("p50", "p99")) {
                String v = o.get("lat." + p.key() + "." + pct);
                try {
                    m.put("lat." + p.metric() + "." + pct + ".us", Double.parseDouble(v));
                } catch (NumberFormatException e) {
                    throw new AssertionError("fio " + p.metric() + " gave no " + pct + " latency ('" + v + "'):\n" + o.tail());
                }
            }
        }
        System.out.printf(Locale.ROOT, "[bench] %s round %d: QD32 %.0f read / %.0f write IOPS, QD1 p50 %.0f / %.0f us%n",
                c.id(), round, m.get("iops.randread.qd32"), m.get("iops.randwrite.qd32"),
                m.get("lat.randread.qd1.p50.us"), m.get("lat.randwrite.qd1.p50.us"));
    }

    /** backends.json, backends.md and the charts, with the ratios. */
    private static void write(BackendSettings s, BenchmarkReport report) throws IOException {
        List<String> ratioLines = new ArrayList<>();
        for (Comparison cmp : COMPARISONS) {
            if (!s.configs().contains(cmp.numerator()) || !s.configs().contains(cmp.denominator())) {
                continue;
            }
            for (BackendWorkload.Phase p : BackendWorkload.QD32) {
                String name = cmp.numerator().id() + "/" + cmp.denominator().id() + " " + p.rw() + " QD32";
                BenchmarkReport.Ratio r = report.ratio(name, report.median(cmp.numerator().id(), "iops." + p.metric())
                        / report.median(cmp.denominator().id(), "iops." + p.metric()), cmp.atLeast());
                ratioLines.add(String.format(Locale.ROOT, "%s = %.2f (target >= %s): %s", name, r.value(),
                        cmp.atLeast() == Math.rint(cmp.atLeast()) ? Long.toString((long) cmp.atLeast()) : Double.toString(cmp.atLeast()),
                        Double.isNaN(r.value()) ? "no numbers" : r.met() ? "met" : "NOT met"));
            }
        }
        List<String> java = s.configs().stream().filter(BackendConfig::java).map(BackendConfig::id).toList();
        String guestTable = report.table(GUEST_METRICS);
        String serverTable = java.isEmpty() ? "" : report.table(java, SERVER_METRICS);
        System.out.println("[bench] results (median (min–max) over " + s.rounds() + " rounds):\n" + guestTable + "\n"
                + serverTable + (ratioLines.isEmpty() ? "" : "\n[bench] " + String.join("\n[bench] ", ratioLines)));

        Files.createDirectories(s.out());
        report.writeJson(s.out().resolve("backends.json"));
        StringBuilder md = new StringBuilder("# Backends: the Java NVMe vs QEMU's NVMe on the same storage\n\n");
        md.append("Median (min–max) of ").append(s.rounds()).append(" rounds; each run a fresh guest, rounds interleaved, every second round in reverse order."
                + " fio 4k, libaio, direct; QD32 with ").append(s.cpus()).append(" jobs, QD1 with one; ")
                .append(s.seconds()).append(" s per run.\n\n");
        report.environment().forEach((k, v) -> md.append("- ").append(k).append(": ").append(v).append('\n'));
        md.append("\n## Guest (fio)\n\n").append(guestTable);
        if (!serverTable.isEmpty()) {
            md.append("\n## Java server, over each QD32 run\n\n").append(serverTable).append("\ninflight.max: the"
                    + " namespace's in-flight high-water mark since the guest booted (absent if the device does not"
                    + " report it); jvm.cpu: the whole test JVM's CPU time (server, GC, JIT, harness).\n");
        }
        md.append("\n## Ratios of QD32 IOPS medians\n\n");
        ratioLines.forEach(l -> md.append("- ").append(l).append('\n'));
        Files.writeString(s.out().resolve("backends.md"), md.toString());
        report.writeChart(s.out().resolve("backends-iops-qd32.png"), List.of("iops.randread.qd32", "iops.randwrite.qd32"),
                List.of("randread", "randwrite"), "fio 4k QD32 x " + s.cpus() + " jobs, IOPS (median of " + s.rounds() + ")", "IOPS");
        report.writeChart(s.out().resolve("backends-latency-qd1-p50.png"),
                List.of("lat.randread.qd1.p50.us", "lat.randwrite.qd1.p50.us"), List.of("randread", "randwrite"),
                "fio 4k QD1, p50 completion latency (median of " + s.rounds() + ")", "microseconds");
        System.out.println("[bench] wrote " + s.out().toAbsolutePath() + "/backends.{json,md} and backends-*.png");
    }

    private static long processCpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
    }

    private static double delta(Map<String, Long> before, Map<String, Long> after, String key) {
        return after.getOrDefault(key, 0L) - before.getOrDefault(key, 0L);
    }

    /** The first line a tool prints (a version, a file system type); fails naming {@code what} if it cannot run. */
    private static String firstLine(List<String> command, String what) throws InterruptedException {
        try {
            Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            if (!p.waitFor(10, TimeUnit.SECONDS) || p.exitValue() != 0) {
                throw new IllegalStateException(String.join(" ", command) + " failed: " + out);
            }
            return out.lines().findFirst().orElse("");
        } catch (IOException e) {
            throw new IllegalStateException(what + " is needed but `" + String.join(" ", command) + "` cannot run ("
                    + e.getMessage() + "); qemu-tests/image/setup-host.sh installs qemu-utils and nbdkit", e);
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> all = Files.walk(dir)) {
            for (Path p : all.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
