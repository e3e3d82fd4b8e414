package io.javadevices.nvme.bench;

import io.javadevices.nvme.backend.AsyncIo;
import io.javadevices.nvme.backend.FileBackend;
import io.javadevices.nvme.backend.IoEngine;
import io.javadevices.nvme.backend.IoVector;
import io.javadevices.nvme.backend.UringEngine;
import io.javadevices.nvme.backend.UringFileIo;
import io.javadevices.nvme.backend.UringTestFiles;
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

import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * 4 KiB random reads of a 256 MiB file (page-cached unless O_DIRECT) on one thread: {@code io_uring} keeping 32 reads in flight
 * through {@link UringEngine}/{@link UringFileIo} (what a queue worker does: each completion re-issues its tag)
 * versus a blocking {@code pread(2)} at depth 1 (one command at a time per queue, the design before the
 * asynchronous engines). Result: reads per second. The {@code -direct} variants open the file with
 * {@code O_DIRECT}: every read goes to the disk, and depth, not system-call overhead, decides.
 *
 * <p>Run as {@link NvmeSubmitBenchmark} says, with this class's name.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 3)
public class UringReadBenchmark implements IoEngine.Completions {
    private static final int BATCH = 32;
    private static final long FILE_BYTES = 256L << 20;
    private static final long BLOCKS = FILE_BYTES / 4096;

    @Param({"io_uring-qd32", "pread-qd1", "io_uring-direct-qd32", "pread-direct-qd1"})
    public String mode;

    private Path dir;
    private Path file;
    private int fd;
    private Arena arena;
    private MemorySegment buffers;
    private UringEngine engine;
    private FileBackend backend;
    private AsyncIo io;
    private IoVector[] vectors;
    private long seed = 99;
    private int completed;
    private int errors;

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        dir = UringTestFiles.directory();
        file = dir.resolve("bench.img");
        byte[] chunk = new byte[1 << 20];
        new Random(1).nextBytes(chunk);
        try (OutputStream out = Files.newOutputStream(file)) {
            for (long i = 0; i < FILE_BYTES; i += chunk.length) {
                out.write(chunk); // written, not sparse: every read comes from the page cache
            }
        }
        boolean direct = mode.contains("direct");
        fd = UringTestFiles.open(file, direct);
        if (fd < 0) {
            throw new IOException("open " + file + (direct ? " with O_DIRECT" : "") + ": errno " + -fd);
        }
        arena = Arena.ofShared();
        buffers = arena.allocate(BATCH * 4096L, 4096);
        if (mode.startsWith("io_uring")) {
            backend = new FileBackend(file, FILE_BYTES);
            engine = UringEngine.open(BATCH, Thread.currentThread());
            io = new UringFileIo(engine, fd, direct ? 4096 : 0, backend, false);
            vectors = new IoVector[BATCH];
            for (int t = 0; t < BATCH; t++) {
                vectors[t] = new IoVector(1);
                vectors[t].add(buffers.asSlice(t * 4096L, 4096));
                io.read(t, nextOffset(), vectors[t]);
            }
        }
    }

    private long nextOffset() {
        seed = seed * 6364136223846793005L + 1442695040888963407L;
        return ((seed >>> 17) % BLOCKS) * 4096;
    }

    /** Completes 32 reads while keeping 32 in flight. */
    @Benchmark
    @OperationsPerInvocation(BATCH)
    public int reads() {
        if (engine == null) {
            long sum = 0;
            for (int i = 0; i < BATCH; i++) {
                sum += UringTestFiles.pread(fd, buffers.asSlice(i * 4096L, 4096), nextOffset());
            }
            return (int) sum;
        }
        completed = 0;
        while (completed < BATCH) {
            engine.submit();
            if (engine.reap(this) == 0) {
                engine.await(1_000_000_000L);
            }
        }
        return completed;
    }

    @Override
    public void completed(int tag, int result) {
        completed++;
        if (result != 4096) {
            errors++;
        }
        io.read(tag, nextOffset(), vectors[tag]);
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        if (engine != null) {
            int inFlight = BATCH; // drain what is still in flight before closing the ring
            completed = 0;
            while (completed < inFlight) {
                engine.submit();
                if (engine.reap((tag, result) -> completed++) == 0) {
                    engine.await(1_000_000_000L);
                }
            }
            engine.close();
            backend.close();
            System.out.printf("%n[%s] errors=%d%n", mode, errors);
        }
        UringTestFiles.close(fd);
        arena.close();
        Files.deleteIfExists(file);
        Files.deleteIfExists(dir);
    }

    public static void main(String[] args) throws RunnerException {
        new Runner(new OptionsBuilder().include(UringReadBenchmark.class.getName()).build()).run();
    }
}
