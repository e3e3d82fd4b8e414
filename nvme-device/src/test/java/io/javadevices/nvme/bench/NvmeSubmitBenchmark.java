package io.javadevices.nvme.bench;

import io.javadevices.nvme.NvmeStatistics;
import io.javadevices.nvme.NvmeController;
import io.javadevices.nvme.NvmeOptions;
import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.nvme.driver.LinuxLikeDriver;
import io.javadevices.pci.testkit.TestHost;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.OptionsBuilder;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * In-process submission path: Linux-like host driver → BAR0/shadow doorbells → controller worker →
 * null or RAM backend → CQE + MSI-X, one I/O queue, QD32 (32 single-command submissions, each rung the way
 * Linux rings, then all 32 reaped), DBBUF on vs off. Result: commands per second.
 *
 * <p>Run (from the repository root, JDK 25):
 * <pre>
 * source .ci/jdk25.sh &amp;&amp; mvn -B -q -pl nvme-device test-compile \
 *   dependency:build-classpath -Dmdep.outputFile=target/test-cp.txt -Dmdep.includeScope=test
 * java -cp nvme-device/target/test-classes:nvme-device/target/classes:$(cat nvme-device/target/test-cp.txt) \
 *   io.javadevices.nvme.bench.NvmeSubmitBenchmark
 * </pre>
 * (the main method runs 1 fork, 2 × 2 s warm-up, 3 × 3 s measurement; or pass JMH options to
 * {@code org.openjdk.jmh.Main NvmeSubmitBenchmark}).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(1)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 3)
public class NvmeSubmitBenchmark {
    private static final int QD = 32;

    @Param({"on", "off"})
    public String dbbuf;

    /** The namespace: the null backend (no data moved) or a RAM disk (a memory copy per command). */
    @Param({"null:1G", "ram:64M"})
    public String namespace;

    private TestHost host;
    private NvmeController controller;
    private LinuxLikeDriver driver;
    private HostQueue queue;
    private long buffer;
    private long commands;

    @Setup(Level.Trial)
    public void setUp() {
        host = TestHost.direct(64L << 20);
        controller = host.attach(ctx -> new NvmeController(NvmeOptions.parse(Map.of(
                "namespaces", namespace, "queues", "1", "dbbuf", dbbuf)), ctx));
        driver = new LinuxLikeDriver(host);
        driver.bringUp(1, 64, true);
        queue = driver.ioQueue(1);
        buffer = host.allocatePages(1);
    }

    @Benchmark
    @OperationsPerInvocation(QD)
    public int qd32() {
        for (int i = 0; i < QD; i++) {
            queue.submit(Command.read(1, i, 8, buffer, 0));
        }
        commands += QD;
        return queue.awaitCompletions(QD, Duration.ofSeconds(10)).size();
    }

    /**
     * QD1 round trip: one read submitted the way Linux rings, then its completion awaited. The worker spins
     * between commands of a one-command busy period ({@code poll-us}), so this is the device's own share of a
     * guest's QD1 latency: doorbell seen, command run, CQE and interrupt posted.
     */
    @Benchmark
    @BenchmarkMode(Mode.AverageTime)
    @OutputTimeUnit(TimeUnit.NANOSECONDS)
    public int qd1() {
        queue.submit(Command.read(1, 0, 8, buffer, 0));
        commands++;
        return queue.awaitCompletions(1, Duration.ofSeconds(10)).size();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        Map<String, Long> s = controller.statistics();
        System.out.printf("%n[dbbuf=%s] commands=%d mmio doorbells/command=%.3f (sq %d, cq %d) shadow-only sq=%d interrupts/command=%.3f%n",
                dbbuf, commands, (double) driver.mmioDoorbellWrites() / Math.max(1, commands),
                s.get(NvmeStatistics.DOORBELL_MMIO_SQ), s.get(NvmeStatistics.DOORBELL_MMIO_CQ), s.get(NvmeStatistics.DOORBELL_SHADOW_SQ),
                (double) s.get(NvmeStatistics.INTERRUPTS) / Math.max(1, commands));
        host.close();
    }

    public static void main(String[] args) throws RunnerException {
        new Runner(new OptionsBuilder().include(NvmeSubmitBenchmark.class.getName()).build()).run();
    }
}
