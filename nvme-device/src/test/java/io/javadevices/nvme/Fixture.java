package io.javadevices.nvme;

import io.javadevices.nvme.backend.BlockBackend;
import io.javadevices.nvme.driver.LinuxLikeDriver;
import io.javadevices.pci.DeviceContext;
import io.javadevices.pci.WorkerPool;
import io.javadevices.pci.testkit.TestHost;

import java.util.HashMap;
import java.util.Map;
import java.util.function.Function;

/** A test host with one NVMe controller and a Linux-like driver. */
final class Fixture implements AutoCloseable {
    final TestHost host;
    final NvmeController controller;
    final LinuxLikeDriver driver;

    Fixture(Map<String, String> options) {
        this(options, 64L << 20);
    }

    Fixture(Map<String, String> options, long ram) {
        this(options, ram, NvmeOptions.NamespaceSpec::open);
    }

    /** Namespaces opened by {@code open} (a test backend around the one the spec names). */
    Fixture(Map<String, String> options, long ram, Function<NvmeOptions.NamespaceSpec, BlockBackend> open) {
        this(options, ram, open, null);
    }

    /** A controller whose I/O queues run on {@code workers} (a host's shared pool), or its own pool when null. */
    Fixture(Map<String, String> options, long ram, Function<NvmeOptions.NamespaceSpec, BlockBackend> open,
            WorkerPool workers) {
        this(TestHost.heap(ram), options, open, workers);
    }

    private Fixture(TestHost host, Map<String, String> options, Function<NvmeOptions.NamespaceSpec, BlockBackend> open,
                    WorkerPool workers) {
        this.host = host;
        Map<String, String> o = new HashMap<>();
        o.put("namespaces", "ram:64M");
        o.putAll(options);
        controller = host.attach(ctx -> new NvmeController(NvmeOptions.parse(o), workers == null ? ctx
                : new DeviceContext(ctx.memory(), ctx.interrupts(), ctx.barMemory(), workers), open));
        driver = new LinuxLikeDriver(host);
    }

    /** {@link #withoutSafetyNet} on a shared pool. */
    static Fixture onPool(WorkerPool workers, String... keyValues) {
        Map<String, String> o = pairs(keyValues);
        o.putIfAbsent("park-dbbuf-us", SAFETY_NET_OFF);
        o.putIfAbsent("park-trapped-us", SAFETY_NET_OFF);
        return new Fixture(o, 64L << 20, NvmeOptions.NamespaceSpec::open, workers);
    }

    /** Safety-net parks long enough (5 s) that a lost wake-up shows up as a test timeout, not hidden by a timer. */
    private static final String SAFETY_NET_OFF = "5000000";

    /**
     * A fixture whose workers' safety-net parks ({@code park-dbbuf-us}, {@code park-trapped-us}) are 5 s, so a
     * lost wake-up (a doorbell, a look, an EventIdx re-arm gone wrong) fails the test instead of being hidden.
     */
    static Fixture withoutSafetyNet(String... keyValues) {
        Map<String, String> o = pairs(keyValues);
        o.putIfAbsent("park-dbbuf-us", SAFETY_NET_OFF);
        o.putIfAbsent("park-trapped-us", SAFETY_NET_OFF);
        return new Fixture(o);
    }

    static Fixture of(String... keyValues) {
        return new Fixture(pairs(keyValues));
    }

    /**
     * A fixture whose guest RAM (64 MiB) is native memory, as a real guest's is: the kernel can then read and
     * write it directly (io_uring, pwritev2), where heap RAM makes the engines take the backend's copying path.
     */
    static Fixture onNativeMemory(String... keyValues) {
        return new Fixture(TestHost.direct(64L << 20), pairs(keyValues), NvmeOptions.NamespaceSpec::open, null);
    }

    private static Map<String, String> pairs(String... keyValues) {
        Map<String, String> o = new HashMap<>();
        for (int i = 0; i < keyValues.length; i += 2) {
            o.put(keyValues[i], keyValues[i + 1]);
        }
        return o;
    }

    long stat(String key) {
        Long v = controller.statistics().get(key);
        if (v == null) {
            throw new AssertionError("no statistic " + key);
        }
        return v;
    }

    @Override
    public void close() {
        host.close();
    }

    /** The live thread that runs I/O queue {@code qid}'s worker (a pool thread, shared with other queues). */
    Thread workerThread(int qid) {
        String name = controller.queueWorker(qid).threadName();
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().equals(name) && t.isAlive())
                .findFirst().orElseThrow();
    }
}
