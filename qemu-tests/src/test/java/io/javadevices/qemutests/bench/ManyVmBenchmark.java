package io.javadevices.qemutests.bench;

import io.javadevices.qemutests.harness.Accelerator;
import io.javadevices.qemutests.harness.GuestImage;
import io.javadevices.qemutests.harness.QemuGuest;
import io.javadevices.qemutests.harness.RpcClient;
import io.javadevices.qemutests.harness.ServerProcess;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Many VMs on one server: {@code bench.guests} guests (default 2) × 1 vCPU at the same time, each on its own
 * controller of ONE Java server process (M-java: the packaged server started with {@code --rpc-socket} only, the
 * controllers added with {@code controller_add}, each with one I/O queue and a {@code null} namespace), against the
 * same guests each with QEMU's own NVMe on {@code null-co} (M-qemu). Every guest runs {@link ManyVmWorkload}: fio
 * 4k randread, then randwrite, QD32, one job, the guests' phases starting together at a wall-clock time. Not part
 * of {@code mvn verify}: run it with {@code qemu-tests/run-benchmark -Dbench.suite=many-vm}.
 *
 * <p>Per run: per-guest IOPS and their total, the slowest guest's share of the fastest one's IOPS (fairness), how
 * late the last guest started a phase; for M-java, over each phase (read in the idle gap before and after it) the
 * server's MMIO doorbells per I/O, interrupts per I/O and its process CPU seconds per million I/Os, summed over
 * the controllers from {@code stats_get}. Rounds interleave the configurations. Results: {@code many-vm.json},
 * {@code many-vm.md}, {@code many-vm-iops.png} (totals) and {@code many-vm-per-guest.png} in {@code bench.out}.
 *
 * <p>Knobs: {@code bench.rounds} (3), {@code bench.seconds} (10: each phase), {@code bench.guests} (2),
 * {@code bench.warmup} (2: seconds of unmeasured randrw first, 0: none), {@code bench.configs} ({@code M-qemu,M-java}),
 * {@code bench.boot} (60: seconds the first run allows the guests to
 * boot before the first phase; later runs allow 1.5 × the slowest boot seen + 15 s), {@code bench.options} (extra
 * NVMe options for the Java controllers, {@code key=value;...}), {@code bench.out}. A failed run (a guest without
 * numbers, a guest that started a phase more than {@link #MAX_LATE_SECONDS} s late) does not stop the others; the
 * benchmark fails at the end naming it. It measures; it does not judge.
 */
class ManyVmBenchmark {
    private static final int MAX_LATE_SECONDS = 2;
    private static final String SIZE = "1G";
    private static final List<String> CONFIGS = List.of("M-qemu", "M-java");

    @TempDir
    Path dir;

    private int rounds;
    private int seconds;
    private int guests;
    private int warmup;
    private long bootAllowance;
    private Map<String, String> extraOptions;

    @Test
    void manyVm() throws Exception {
        String suite = System.getProperty("bench.suite", "many-vm");
        if (!suite.equals("many-vm")) {
            fail("ManyVmBenchmark runs for bench.suite=many-vm, not '" + suite + "'");
        }
        rounds = positive("bench.rounds", 3);
        seconds = positive("bench.seconds", 10);
        guests = positive("bench.guests", 2);
        bootAllowance = positive("bench.boot", 60);
        warmup = Integer.getInteger("bench.warmup", 2);
        extraOptions = pairs(System.getProperty("bench.options", ""));
        List<String> configs = new ArrayList<>();
        for (String c : System.getProperty("bench.configs", String.join(",", CONFIGS)).split(",")) {
            if (!c.isBlank()) {
                if (!CONFIGS.contains(c.trim())) {
                    fail("unknown many-vm configuration '" + c + "' in bench.configs (known: " + CONFIGS + ")");
                }
                configs.add(c.trim());
            }
        }
        if (configs.isEmpty()) {
            configs.addAll(CONFIGS);
        }
        Path out = Path.of(System.getProperty("bench.out", GuestImage.moduleDir().resolve("benchmark-results").toString()));

        BenchmarkReport report = new BenchmarkReport();
        Map<String, String> labels = Map.of(
                "M-qemu", "M-qemu: " + guests + " guests x 1 vCPU, QEMU nvme each (null-co)",
                "M-java", "M-java: " + guests + " guests x 1 vCPU, one Java server, " + guests + " controllers (null)");
        configs.forEach(c -> report.describe(c, labels.get(c)));
        environment(report, configs);
        long started = System.nanoTime();
        List<String> failures = new ArrayList<>();
        for (int round = 1; round <= rounds; round++) {
            for (String config : configs) {
                System.out.printf("[bench] round %d/%d, configuration %s%n", round, rounds, config);
                try {
                    runOne(config, round, report);
                } catch (Exception | AssertionError e) {
                    if (e instanceof InterruptedException) {
                        throw e;
                    }
                    String message = config + " round " + round + ": " + e.getMessage();
                    failures.add(message.lines().findFirst().orElse(message));
                    System.out.println("[bench] FAILED " + message);
                }
            }
        }
        report.environment("elapsed.minutes", String.format(Locale.ROOT, "%.1f", (System.nanoTime() - started) / 60e9));
        write(out, configs, report);
        List<String> empty = configs.stream().filter(c -> !(report.median(c, "iops.randread.total") > 0)).toList();
        if (!failures.isEmpty() || !empty.isEmpty()) {
            fail("configurations without numbers: " + (empty.isEmpty() ? "none" : String.join(", ", empty))
                    + "; failed runs:\n  " + String.join("\n  ", failures));
        }
    }

    private void environment(BenchmarkReport report, List<String> configs) {
        report.environment("date", LocalDate.now().toString());
        report.environment("accelerator", Accelerator.choose().toString());
        report.environment("image", GuestImage.tag());
        report.environment("host.cpus", Integer.toString(Runtime.getRuntime().availableProcessors()));
        report.environment("host.cpu", SeedBenchmark.cpuModel());
        report.environment("guests", guests + " at once, 1 vCPU and 512 MiB each");
        report.environment("rounds", Integer.toString(rounds));
        report.environment("fio.seconds", seconds + " per phase (randread, then randwrite), 4k, QD32, 1 job, libaio, direct");
        report.environment("fio.warmup.seconds", warmup + " (randrw, unmeasured, before the phases)");
        report.environment("java", System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
        if (configs.contains("M-qemu")) {
            report.environment("setup.M-qemu", "QEMU: `-drive if=none,id=d0,driver=null-co,read-zeroes=on,size=" + SIZE
                    + " -device nvme,drive=d0` in each guest");
        }
        if (configs.contains("M-java")) {
            report.environment("setup.M-java", "`nvme-server --rpc-socket RPC`, then per guest `controller_add` with"
                    + " params `" + RpcClient.json(controllerParams("$DIR/vmN.sock")) + "`");
        }
    }

    private Map<String, Object> controllerParams(String socket) {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("socket", socket);
        p.put("namespaces", List.of("null:" + SIZE));
        p.put("queues", 1);
        if (!extraOptions.isEmpty()) {
            p.put("options", extraOptions);
        }
        return p;
    }

    /** Counters summed over the Java server's controllers, and the server's CPU time, at one moment. */
    private record Snapshot(long ioCommands, long mmioDoorbells, long interrupts, long cpuNanos) {
        static Snapshot of(RpcClient rpc, ServerProcess server) throws Exception {
            long io = 0, mmio = 0, irq = 0;
            for (RpcClient.ControllerStats c : rpc.statsGet()) {
                io += c.device("io.commands");
                mmio += c.device("doorbell.mmio.sq") + c.device("doorbell.mmio.cq");
                irq += c.device("interrupts");
            }
            return new Snapshot(io, mmio, irq, server.cpuNanos());
        }
    }

    private void runOne(String config, int round, BenchmarkReport report) throws Exception {
        boolean java = config.equals("M-java");
        String run = config + round;
        Path runDir = Files.createDirectories(dir.resolve(run));
        ServerProcess server = null;
        RpcClient rpc = null;
        List<QemuGuest> running = new ArrayList<>();
        try {
            if (java) {
                Path rpcSocket = runDir.resolve("rpc.sock");
                server = ServerProcess.startWithRpc(run, rpcSocket);
                rpc = RpcClient.connect(rpcSocket);
                for (int g = 1; g <= guests; g++) {
                    Map<String, Object> params = controllerParams(runDir.resolve("vm" + g + ".sock").toString());
                    rpc.call("controller_add", params);
                }
            }
            long firstStart = System.currentTimeMillis() / 1000 + bootAllowance;
            String script = ManyVmWorkload.script(firstStart, seconds, warmup);
            long measured = ManyVmWorkload.measuredStart(firstStart, warmup);
            long booting = System.nanoTime();
            for (int g = 1; g <= guests; g++) {
                QemuGuest.Spec spec = new QemuGuest.Spec("mvm-" + run + "-g" + g, runDir).cpus(1).memoryMiB(512).script(script);
                if (java) {
                    spec.vfioUser("vm" + g + ".sock");
                } else {
                    spec.qemuArgs("-drive", "if=none,id=d0,driver=null-co,read-zeroes=on,size=" + SIZE,
                            "-device", "nvme,drive=d0,serial=MVM-" + g);
                }
                running.add(spec.start());
            }
            awaitAll(running, "ready", Duration.ofSeconds(bootAllowance + 180));
            double bootSeconds = (System.nanoTime() - booting) / 1e9;
            // The next run allows 1.5 x the slowest boot seen (a loaded machine boots slower) plus a margin.
            bootAllowance = Math.min(300, (long) Math.ceil(bootSeconds * 1.5) + 15);
            report.add(config, "boot.s", bootSeconds);

            for (int i = 0; i < ManyVmWorkload.PHASES.size(); i++) {
                ManyVmWorkload.Phase p = ManyVmWorkload.PHASES.get(i);
                long startMillis = ManyVmWorkload.phaseStart(measured, i, seconds) * 1000;
                Thread.sleep(Math.max(0, startMillis - 500 - System.currentTimeMillis()));
                Snapshot before = java ? Snapshot.of(rpc, server) : null;
                awaitAll(running, p.key() + "-done", Duration.ofSeconds(seconds + 180L));
                if (java) {
                    Snapshot after = Snapshot.of(rpc, server);
                    double ios = after.ioCommands - before.ioCommands;
                    if (ios <= 0) {
                        throw new AssertionError("the Java server counted no I/O commands during " + p.rw());
                    }
                    report.add(config, "mmio.doorbells.per.io." + p.rw(), (after.mmioDoorbells - before.mmioDoorbells) / ios);
                    report.add(config, "interrupts.per.io." + p.rw(), (after.interrupts - before.interrupts) / ios);
                    report.add(config, "server.cpu.s.per.mio." + p.rw(), (after.cpuNanos - before.cpuNanos) / 1e9 / (ios / 1e6));
                }
            }
            List<QemuGuest.Outcome> outcomes = new ArrayList<>();
            for (QemuGuest guest : running) {
                QemuGuest.Outcome o = guest.awaitExit(Duration.ofSeconds(60));
                if (!o.finished()) {
                    throw new AssertionError("a guest did not finish:\n" + o.tail());
                }
                outcomes.add(o);
            }
            guestResults(config, round, outcomes, report);
        } catch (Exception | AssertionError e) {
            if (e instanceof InterruptedException) {
                throw e;
            }
            throw new AssertionError(e.getMessage() + (server == null ? "" : "\nJava server output:\n" + server.logTail()), e);
        } finally {
            for (QemuGuest guest : running) {
                guest.close();
            }
            if (rpc != null) {
                rpc.close();
            }
            if (server != null) {
                server.close();
            }
        }
    }

    private void guestResults(String config, int round, List<QemuGuest.Outcome> outcomes, BenchmarkReport report) {
        StringBuilder line = new StringBuilder();
        for (ManyVmWorkload.Phase p : ManyVmWorkload.PHASES) {
            double total = 0, min = Double.MAX_VALUE, max = 0;
            long late = 0;
            for (int g = 0; g < outcomes.size(); g++) {
                QemuGuest.Outcome o = outcomes.get(g);
                if (o.getLong("fio." + p.key() + ".rc") != 0 || o.getLong("fio." + p.key() + ".err") != 0) {
                    throw new AssertionError("guest " + (g + 1) + ": fio " + p.rw() + " failed:\n" + o.tail());
                }
                long iops = o.getLong("fio." + p.key() + (p.reads() ? ".iops" : ".wiops"));
                if (iops <= 0) {
                    throw new AssertionError("guest " + (g + 1) + ": fio " + p.rw() + " reported no I/O:\n" + o.tail());
                }
                late = Math.max(late, o.getLong("late." + p.key()));
                report.add(config, "iops." + p.rw() + ".g" + (g + 1), iops);
                total += iops;
                min = Math.min(min, iops);
                max = Math.max(max, iops);
            }
            if (late > MAX_LATE_SECONDS) {
                // Not together: the next run allows more time to boot.
                bootAllowance = Math.min(300, bootAllowance + late + 30);
                throw new AssertionError("a guest started " + p.rw() + " " + late + " s late (the guests did not run"
                        + " together; the next run allows " + bootAllowance + " s to boot)");
            }
            report.add(config, "iops." + p.rw() + ".total", total);
            report.add(config, "iops." + p.rw() + ".min.over.max", min / max);
            report.add(config, "late.max.s." + p.rw(), late);
            line.append(String.format(Locale.ROOT, " %s %.0f IOPS total (%.2f min/max);", p.rw(), total, min / max));
        }
        System.out.printf("[bench] %s round %d:%s%n", config, round, line);
    }

    private void write(Path out, List<String> configs, BenchmarkReport report) throws IOException {
        List<String> guestMetrics = new ArrayList<>();
        for (ManyVmWorkload.Phase p : ManyVmWorkload.PHASES) {
            guestMetrics.add("iops." + p.rw() + ".total");
            for (int g = 1; g <= guests; g++) {
                guestMetrics.add("iops." + p.rw() + ".g" + g);
            }
            guestMetrics.add("iops." + p.rw() + ".min.over.max");
        }
        guestMetrics.add("boot.s");
        List<String> serverMetrics = new ArrayList<>();
        for (ManyVmWorkload.Phase p : ManyVmWorkload.PHASES) {
            serverMetrics.addAll(List.of("mmio.doorbells.per.io." + p.rw(), "interrupts.per.io." + p.rw(),
                    "server.cpu.s.per.mio." + p.rw()));
        }
        List<String> ratioLines = new ArrayList<>();
        if (configs.containsAll(CONFIGS)) {
            for (ManyVmWorkload.Phase p : ManyVmWorkload.PHASES) {
                String name = "M-java/M-qemu total " + p.rw() + " IOPS";
                BenchmarkReport.Ratio r = report.ratio(name, report.median("M-java", "iops." + p.rw() + ".total")
                        / report.median("M-qemu", "iops." + p.rw() + ".total"), 1.0);
                ratioLines.add(String.format(Locale.ROOT, "%s = %.2f", name, r.value()));
            }
        }
        String guestTable = report.table(configs, guestMetrics);
        String serverTable = configs.contains("M-java") ? report.table(List.of("M-java"), serverMetrics) : "";
        System.out.println("[bench] results (median (min–max) over " + rounds + " rounds):\n" + guestTable + "\n"
                + serverTable + (ratioLines.isEmpty() ? "" : "\n[bench] " + String.join("\n[bench] ", ratioLines)));

        Files.createDirectories(out);
        report.writeJson(out.resolve("many-vm.json"));
        StringBuilder md = new StringBuilder("# Many VMs: " + guests + " guests x 1 vCPU on one Java server vs QEMU's NVMe\n\n");
        md.append("Median (min–max) of ").append(rounds).append(" rounds; each run fresh guests (and a fresh server),"
                + " rounds interleaved; the guests of a run start each fio phase together.\n\n");
        report.environment().forEach((k, v) -> md.append("- ").append(k).append(": ").append(v).append('\n'));
        md.append("\n## Guests (fio IOPS)\n\n").append(guestTable);
        if (!serverTable.isEmpty()) {
            md.append("\n## Java server, over each phase, all controllers\n\n").append(serverTable)
                    .append("\nserver.cpu: the server process's CPU time (all its threads).\n");
        }
        if (!ratioLines.isEmpty()) {
            md.append("\n## Ratios of medians\n\n");
            ratioLines.forEach(l -> md.append("- ").append(l).append('\n'));
        }
        Files.writeString(out.resolve("many-vm.md"), md.toString());
        report.writeChart(out.resolve("many-vm-iops.png"), List.of("iops.randread.total", "iops.randwrite.total"),
                List.of("randread", "randwrite"), guests + " guests x 1 vCPU at once, fio 4k QD32, total IOPS (median of "
                        + rounds + ")", "IOPS");
        List<String> perGuest = new ArrayList<>();
        List<String> perGuestNames = new ArrayList<>();
        for (int g = 1; g <= guests; g++) {
            perGuest.add("iops.randread.g" + g);
            perGuestNames.add("guest " + g + " randread");
        }
        report.writeChart(out.resolve("many-vm-per-guest.png"), perGuest, perGuestNames,
                "fio 4k randread QD32, IOPS per guest (median of " + rounds + ")", "IOPS");
        System.out.println("[bench] wrote " + out.toAbsolutePath() + "/many-vm.{json,md} and many-vm-*.png");
    }

    private static void awaitAll(List<QemuGuest> guests, String mark, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        for (QemuGuest guest : guests) {
            Duration left = Duration.ofNanos(Math.max(0, deadline - System.nanoTime()));
            if (!guest.awaitOutput("@@MARK " + mark, left)) {
                throw new AssertionError("a guest never printed @@MARK " + mark + "; console tail:\n" + guest.consoleTail(40));
            }
        }
    }

    private static int positive(String property, int fallback) {
        int v = Integer.getInteger(property, fallback);
        if (v < 1) {
            throw new IllegalArgumentException(property + " must be at least 1: " + v);
        }
        return v;
    }

    private static Map<String, String> pairs(String text) {
        Map<String, String> m = new LinkedHashMap<>();
        for (String kv : text.split(";")) {
            if (!kv.isBlank()) {
                String[] p = kv.split("=", 2);
                m.put(p[0].trim(), p.length > 1 ? p[1].trim() : "");
            }
        }
        return m;
    }
}
