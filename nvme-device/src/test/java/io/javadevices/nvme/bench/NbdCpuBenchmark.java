package io.javadevices.nvme.bench;

import io.javadevices.nvme.NvmeController;
import io.javadevices.nvme.NvmeOptions;
import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.nvme.driver.LinuxLikeDriver;
import io.javadevices.nvme.nbd.NbdTestServers;
import io.javadevices.pci.testkit.TestHost;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * CPU per I/O of the NBD backend against a real {@code qemu-nbd} (raw image in a temporary directory, Unix
 * socket), without a guest: the Linux-like driver keeps QD32 of 4 KiB random reads, then writes, in flight on
 * each of 2 I/O queues of a controller on native guest memory. Prints requests per second and the JVM's CPU
 * microseconds per request, both for the whole process and for the device side alone (the process minus the
 * driver threads, which stand for the guest's vCPUs and spin while they wait). What matters on a host whose CPUs
 * the vCPUs need is the device side's CPU per request; nothing is asserted.
 *
 * <p>Run (from the repository root, JDK 25, qemu-nbd installed):
 * <pre>
 * source .ci/jdk25.sh &amp;&amp; mvn -B -q -pl nvme-device -am test-compile \
 *   dependency:build-classpath -Dmdep.outputFile=target/test-cp.txt -Dmdep.includeScope=test
 * java -cp nvme-device/target/test-classes:nvme-device/target/classes:plugin-api/target/classes:plugin-api/target/test-classes:$(cat nvme-device/target/test-cp.txt) \
 *   io.javadevices.nvme.bench.NbdCpuBenchmark [SECONDS_PER_ROUND [ROUNDS]]
 * </pre>
 */
public final class NbdCpuBenchmark {
    private static final int QUEUES = 2;
    private static final int QD = 32;
    private static final int BLOCKS = 8; // 4 KiB at 512-byte LBAs
    private static final long IMAGE_BYTES = 256L << 20;
    private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();

    private NbdCpuBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        int seconds = args.length > 0 ? Integer.parseInt(args[0]) : 5;
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        Path dir = Files.createTempDirectory("nbd-bench");
        Path image = dir.resolve("disk.raw");
        try (RandomAccessFile file = new RandomAccessFile(image.toFile(), "rw")) {
            byte[] chunk = new byte[1 << 20];
            ThreadLocalRandom.current().nextBytes(chunk);
            for (long at = 0; at < IMAGE_BYTES; at += chunk.length) {
                file.write(chunk); // allocated and page-cached: no holes, no allocation during the run
            }
        }
        Path socket = dir.resolve("nbd.sock");
        Process server = new ProcessBuilder("qemu-nbd", "--socket=" + socket, "--persistent", "--shared=8",
                "--format=raw", image.toString()).redirectErrorStream(true)
                .redirectOutput(dir.resolve("qemu-nbd.out").toFile()).start();
        TestHost host = null;
        try {
            NbdTestServers.awaitListening(server, socket);
            host = TestHost.direct(64L << 20);
            String uri = "nbd+unix:///?socket=" + socket;
            host.attach(ctx -> new NvmeController(NvmeOptions.parse(Map.of("namespaces", uri,
                    "queues", String.valueOf(QUEUES))), ctx));
            LinuxLikeDriver driver = new LinuxLikeDriver(host);
            driver.bringUp(QUEUES, 64, true);
            long[] buffers = new long[QUEUES];
            for (int q = 0; q < QUEUES; q++) {
                buffers[q] = host.allocatePages(QD);
            }
            System.out.printf("NBD on qemu-nbd: %d queues x QD%d, 4 KiB random, %d s rounds%n", QUEUES, QD, seconds);
            run(driver, buffers, false, 2, false); // warm-up (JIT)
            run(driver, buffers, true, 2, false);
            for (int round = 1; round <= rounds; round++) {
                run(driver, buffers, false, seconds, true);
                run(driver, buffers, true, seconds, true);
            }
        } finally {
            if (host != null) {
                host.close();
            }
            server.destroyForcibly();
            server.waitFor(10, TimeUnit.SECONDS);
            try (var files = Files.list(dir)) {
                for (Path p : files.toList()) {
                    Files.deleteIfExists(p);
                }
            }
            Files.deleteIfExists(dir);
        }
        System.exit(0);
    }

    private static void run(LinuxLikeDriver driver, long[] buffers, boolean write, int seconds, boolean print)
            throws InterruptedException {
        AtomicBoolean stop = new AtomicBoolean();
        long[] done = new long[QUEUES];
        long[] errors = new long[QUEUES];
        long[] driverCpu = new long[QUEUES];
        Thread[] threads = new Thread[QUEUES];
        for (int q = 0; q < QUEUES; q++) {
            int index = q;
            HostQueue queue = driver.ioQueue(q + 1);
            threads[q] = Thread.ofPlatform().name("bench-driver-" + q).unstarted(() -> {
                long cpu0 = THREADS.getCurrentThreadCpuTime();
                drive(queue, buffers[index], write, stop, done, errors, index);
                driverCpu[index] = THREADS.getCurrentThreadCpuTime() - cpu0;
            });
        }
        Map<Long, Long> threads0 = threadCpu();
        long cpu0 = processCpuNanos();
        long t0 = System.nanoTime();
        for (Thread t : threads) {
            t.start();
        }
        Thread.sleep(seconds * 1000L);
        stop.set(true);
        for (Thread t : threads) {
            t.join();
        }
        long elapsed = System.nanoTime() - t0;
        long cpu = processCpuNanos() - cpu0;
        long requests = 0, failed = 0, drivers = 0;
        for (int q = 0; q < QUEUES; q++) {
            requests += done[q];
            failed += errors[q];
            drivers += driverCpu[q];
        }
        if (print) {
            System.out.printf("%-5s %8.0f req/s   process %6.1f us/req   device side %6.1f us/req   errors %d%n",
                    write ? "write" : "read", requests * 1e9 / elapsed, cpu / 1e3 / requests,
                    (cpu - drivers) / 1e3 / requests, failed);
            if (Boolean.getBoolean("bench.threads")) {
                System.out.println("      us/req by thread: " + byThread(threads0, requests));
            }
        }
    }

    /** Keeps QD commands in flight on {@code queue} until {@code stop}, then drains. */
    private static void drive(HostQueue queue, long buffer, boolean write, AtomicBoolean stop, long[] done,
                              long[] errors, int index) {
        ThreadLocalRandom random = ThreadLocalRandom.current();
        long lbas = IMAGE_BYTES / 512 / BLOCKS;
        int submitted = 0;
        for (int i = 0; i < QD; i++) {
            queue.queue(command(write, random.nextLong(lbas) * BLOCKS, buffer + 4096L * (submitted++ % QD)));
        }
        queue.ringSq();
        int inFlight = QD;
        while (inFlight > 0) {
            List<Completion> got = queue.awaitCompletions(1, Duration.ofSeconds(30));
            for (Completion c : got) {
                inFlight--;
                done[index]++;
                if (c.status() != 0) {
                    errors[index]++;
                }
                if (!stop.get()) {
                    queue.queue(command(write, random.nextLong(lbas) * BLOCKS, buffer + 4096L * (submitted++ % QD)));
                    inFlight++;
                }
            }
            queue.ringSq();
        }
    }

    private static Command command(boolean write, long slba, long prp) {
        return write ? Command.write(1, slba, BLOCKS, prp, 0) : Command.read(1, slba, BLOCKS, prp, 0);
    }

    private static Map<Long, Long> threadCpu() {
        Map<Long, Long> cpu = new java.util.HashMap<>();
        for (long id : THREADS.getAllThreadIds()) {
            cpu.put(id, THREADS.getThreadCpuTime(id));
        }
        return cpu;
    }

    /** CPU per request of each kind of thread (names without numbers and socket paths) since {@code before}. */
    private static String byThread(Map<Long, Long> before, long requests) {
        Map<String, Long> groups = new java.util.TreeMap<>();
        for (var info : THREADS.getThreadInfo(THREADS.getAllThreadIds())) {
            if (info == null) {
                continue;
            }
            long now = THREADS.getThreadCpuTime(info.getThreadId());
            long delta = now - before.getOrDefault(info.getThreadId(), 0L);
            String name = info.getThreadName().split(" ")[0].replaceAll("[0-9]+", "N");
            groups.merge(name, delta, Long::sum);
        }
        StringBuilder out = new StringBuilder();
        groups.forEach((name, nanos) -> {
            if (nanos / requests >= 500) {
                out.append(String.format("%s %.1f  ", name, nanos / 1e3 / requests));
            }
        });
        return out.toString();
    }

    /** Every thread's CPU, the JIT's and the GC's included, from {@code /proc/self/stat} (utime + stime). */
    private static long processCpuNanos() {
        try {
            String stat = Files.readString(Path.of("/proc/self/stat"));
            String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            long ticks = Long.parseLong(fields[11]) + Long.parseLong(fields[12]); // fields 14, 15 of proc(5)
            return ticks * 10_000_000L; // USER_HZ is 100 on Linux
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
