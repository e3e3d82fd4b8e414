package io.javadevices.qemutests.bench;

import io.javadevices.qemutests.harness.GuestScripts;

import java.util.List;

/**
 * What the guest runs in every {@link BackendBenchmark} configuration, on {@code /dev/nvme0n1} (QEMU's NVMe and
 * the Java one alike): an unmeasured warm-up, then fio 4k randread and randwrite at QD32 (libaio, direct,
 * numjobs = vCPUs) for IOPS, then randread and randwrite at QD1 (one job) for completion-latency percentiles.
 *
 * <p>Each QD32 run is framed by {@code @@MARK <key>-start} / {@code @@MARK <key>-done} lines, each followed by
 * a one-second pause, so that the test reads the Java server's counters over exactly that run, and by
 * snapshots of the guest's NVMe interrupt counts ({@code irq.<key>.0} / {@code irq.<key>.1}).
 */
final class BackendWorkload {
    static final String DEVICE = "/dev/nvme0n1";

    /** One fio run: result key, fio {@code --rw}, queue depth. */
    record Phase(String key, String rw, int depth) {
        /** The metric suffix, e.g. {@code randread.qd32}. */
        String metric() {
            return rw + ".qd" + depth;
        }

        boolean reads() {
            return rw.equals("randread");
        }
    }

    static final List<Phase> QD32 = List.of(new Phase("rr32", "randread", 32), new Phase("rw32", "randwrite", 32));
    static final List<Phase> QD1 = List.of(new Phase("rr1", "randread", 1), new Phase("rw1", "randwrite", 1));

    private BackendWorkload() {
    }

    static String script(int cpus, int seconds, int warmupSeconds) {
        StringBuilder s = new StringBuilder(GuestScripts.waitFor(DEVICE, 60));
        String common = "--filename=" + DEVICE + " --ioengine=libaio --direct=1 --bs=4k --time_based --group_reporting";
        if (warmupSeconds > 0) {
            s.append(GuestScripts.fio("warmup", common + " --rw=randrw --iodepth=32 --numjobs=" + cpus
                    + " --runtime=" + warmupSeconds));
        }
        for (Phase p : QD32) {
            s.append(SeedBenchmark.irqSnapshot("irq." + p.key() + ".0", "nvme"))
                    .append("echo @@MARK ").append(p.key()).append("-start\nsleep 1\n")
                    .append(GuestScripts.fio(p.key(), common + " --rw=" + p.rw() + " --iodepth=" + p.depth()
                            + " --numjobs=" + cpus + " --runtime=" + seconds))
                    .append("echo @@MARK ").append(p.key()).append("-done\n")
                    .append(SeedBenchmark.irqSnapshot("irq." + p.key() + ".1", "nvme"))
                    .append("sleep 1\n");
        }
        for (Phase p : QD1) {
            s.append(GuestScripts.fio(p.key(), common + " --rw=" + p.rw() + " --iodepth=1 --numjobs=1 --runtime=" + seconds))
                    .append(latencyPercentiles(p));
        }
        return s.toString();
    }

    /**
     * Reports {@code lat.<key>.p50} and {@code lat.<key>.p99}: fio terse v3 completion-latency percentiles in
     * microseconds ("50.000000%=usec"), fields 18–37 for reads and 59–78 for writes.
     */
    private static String latencyPercentiles(Phase p) {
        int first = p.reads() ? 18 : 59;
        return "awk -F';' '{for (i = " + first + "; i < " + (first + 20) + "; i++) { split($i, kv, \"=\");"
                + " if (kv[1] == \"50.000000%\") p50 = kv[2]; if (kv[1] == \"99.000000%\") p99 = kv[2] } }"
                + " END {printf \"@@RESULT lat." + p.key() + ".p50=%s\\n@@RESULT lat." + p.key() + ".p99=%s\\n\", p50, p99}'"
                + " /tmp/fio-" + p.key() + ".out\n";
    }
}
