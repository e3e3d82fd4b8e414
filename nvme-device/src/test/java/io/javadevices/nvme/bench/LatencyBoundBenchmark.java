package io.javadevices.nvme.bench;

import io.javadevices.nvme.NvmeController;
import io.javadevices.nvme.NvmeOptions;
import io.javadevices.nvme.backend.AsyncIo;
import io.javadevices.nvme.backend.BlockBackend;
import io.javadevices.nvme.backend.IoEngine;
import io.javadevices.nvme.backend.RamBackend;
import io.javadevices.nvme.backend.ThreadPoolEngine;
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

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * A latency-bound backend (every read waits {@code latencyUs} before copying, as network storage does) at QD32
 * on one queue: executed on the worker one at a time ({@code sync}, the design before asynchronous queues),
 * or on the queue's thread pool with {@code io-threads} threads. Commands per second; a depth of N in flight
 * should give about N ÷ latency.
 *
 * <p>Run as {@link NvmeSubmitBenchmark} says, with this class's name.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(1)
@Warmup(iterations = 1, time = 2)
@Measurement(iterations = 3, time = 2)
public class LatencyBoundBenchmark {
    private static final int QD = 32;

    /** {@code sync}, or the thread count of the pool engine. */
    @Param({"sync", "4", "32"})
    public String engine;

    @Param({"200"})
    public int latencyUs;

    /**
     * The controller's {@code nap-window-us}: how long a queue keeps EventIdx lagging after its last command
     * (0: it re-arms at once, so every refill while the worker sleeps is a doorbell, as before the window also
     * covered operations in flight).
     */
    @Param({"2000"})
    public int napWindowUs;

    /** {@link #steady}: the commands the guest keeps in flight. */
    @Param({"4", "32"})
    public int depth;

    private static final int STEADY_COMMANDS = 32;
    private boolean primed;

    private TestHost host;
    private HostQueue queue;
    private long buffer;

    /** RAM whose reads take {@code latency} first; asynchronous on the pool unless {@code sync}. */
    private static final class SlowBackend implements BlockBackend {
        private final BlockBackend inner;
        private final long latencyNanos;
        private final boolean async;

        SlowBackend(BlockBackend inner, long latencyNanos, boolean async) {
            this.inner = inner;
            this.latencyNanos = latencyNanos;
            this.async = async;
        }

        @Override
        public AsyncIo openAsync(IoEngine engine) {
            return async && engine instanceof ThreadPoolEngine pool ? pool.syncIo(this) : null;
        }

        @Override
        public void read(long offset, MemorySegment dst) throws IOException {
            long end = System.nanoTime() + latencyNanos;
            while (System.nanoTime() < end) {
                LockSupport.parkNanos(end - System.nanoTime());
            }
            inner.read(offset, dst);
        }

        @Override public long size() { return inner.size(); }
        @Override public void write(long offset, MemorySegment src) throws IOException { inner.write(offset, src); }
        @Override public void flush() throws IOException { inner.flush(); }
        @Override public void writeZeroes(long offset, long length) throws IOException { inner.writeZeroes(offset, length); }
        @Override public void deallocate(long offset, long length) throws IOException { inner.deallocate(offset, length); }
        @Override public boolean deallocatedReadsZero() { return inner.deallocatedReadsZero(); }
        @Override public String describe() { return "slow:" + inner.describe(); }
        @Override public void close() { inner.close(); }
    }

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        host = TestHost.direct(64L << 20);
        boolean sync = engine.equals("sync");
        Map<String, String> o = Map.of("namespaces", "ram:64M", "queues", "1", "io-engine", "threads",
                "io-threads", sync ? "4" : engine, "nap-window-us", Integer.toString(napWindowUs));
        // The controller's constructor that takes a backend factory is package-private: reach it the way tests do.
        var ctor = NvmeController.class.getDeclaredConstructor(NvmeOptions.class, io.javadevices.pci.DeviceContext.class,
                java.util.function.Function.class);
        ctor.setAccessible(true);
        java.util.function.Function<NvmeOptions.NamespaceSpec, BlockBackend> open =
                spec -> new SlowBackend(new RamBackend(spec.size()), latencyUs * 1000L, !sync);
        host.attach(ctx -> {
            try {
                return ctor.newInstance(NvmeOptions.parse(o), ctx, open);
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(e);
            }
        });
        LinuxLikeDriver driver = new LinuxLikeDriver(host);
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
        return queue.awaitCompletions(QD, Duration.ofSeconds(10)).size();
    }

    /**
     * A guest that keeps {@link #depth} commands in flight, as fio at that iodepth does: each completion is
     * replaced at once by a new command ({@value #STEADY_COMMANDS} completions per invocation). Commands per
     * second: about depth ÷ latency, less whatever the device adds between a refill and its start (a lagging
     * EventIdx makes the refill wait for the next completion or the end of the worker's nap).
     */
    @Benchmark
    @OperationsPerInvocation(STEADY_COMMANDS)
    public int steady() {
        if (!primed) {
            primed = true;
            for (int i = 0; i < depth; i++) {
                queue.submit(Command.read(1, i, 8, buffer, 0));
            }
        }
        int done = 0;
        while (done < STEADY_COMMANDS) {
            int got = queue.awaitCompletions(1, Duration.ofSeconds(10)).size();
            for (int i = 0; i < got; i++) {
                queue.submit(Command.read(1, done + i, 8, buffer, 0));
            }
            done += got;
        }
        return done;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        host.close();
    }
}
