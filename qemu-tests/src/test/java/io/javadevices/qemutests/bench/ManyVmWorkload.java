package io.javadevices.qemutests.bench;

import io.javadevices.qemutests.harness.GuestScripts;

import java.util.List;

/**
 * What every guest of a {@link ManyVmBenchmark} run executes on {@code /dev/nvme0n1}: an unmeasured randrw warm-up,
 * then fio 4k randread, then randwrite, QD32, one job (one vCPU), time-based, each phase starting at an absolute time (seconds since the
 * epoch) fixed by the host before the guests boot, so that the guests of a run load the server at the same time.
 *
 * <p>Why a wall-clock start and not a signal: the guests have no channel from the host but their disks, and
 * QEMU's own NVMe (the comparison) offers none. Each guest's clock comes from its emulated RTC, i.e. the host's
 * clock at boot, to the second: the guests of a run start a phase within about a second of each other, which a
 * phase of {@code seconds} must dwarf. Each guest reports, per phase, how many seconds after the planned start it
 * began ({@code late.<phase>}; a guest that booted after the start is late by the whole boot overrun).
 *
 * <p>Marks: {@code @@MARK ready} once the disk is there, {@code @@MARK <phase>-done} after each phase; the
 * guests idle between phases, so that server counters read in a gap cover exactly one phase.
 */
final class ManyVmWorkload {
    static final String DEVICE = "/dev/nvme0n1";
    /** Seconds between the end of one phase's run time and the start of the next (fio's own start and end). */
    static final int GAP_SECONDS = 5;

    /** One fio phase: result key and fio {@code --rw}. */
    record Phase(String key, String rw) {
        boolean reads() {
            return rw.equals("randread");
        }
    }

    static final List<Phase> PHASES = List.of(new Phase("rr", "randread"), new Phase("rw", "randwrite"));

    private ManyVmWorkload() {
    }

    /** The epoch second at which phase {@code index} starts, given the first phase's start. */
    static long phaseStart(long firstStart, int index, int seconds) {
        return firstStart + (long) index * (seconds + GAP_SECONDS);
    }

    /**
     * The epoch second at which the first measured phase starts: after the unmeasured warm-up (a randrw run of
     * {@code warmupSeconds} from {@code firstStart}, so that the Java server's JIT has compiled the I/O path
     * before anything is measured), or at {@code firstStart} without one.
     */
    static long measuredStart(long firstStart, int warmupSeconds) {
        return warmupSeconds > 0 ? firstStart + warmupSeconds + GAP_SECONDS : firstStart;
    }

    static String script(long firstStart, int seconds, int warmupSeconds) {
        StringBuilder s = new StringBuilder(GuestScripts.waitFor(DEVICE, 60));
        s.append("echo @@MARK ready\n");
        if (warmupSeconds > 0) {
            s.append(waitUntil(firstStart))
                    .append(GuestScripts.fio("warmup", "--filename=" + DEVICE + " --ioengine=libaio --direct=1 --bs=4k"
                            + " --rw=randrw --iodepth=32 --numjobs=1 --time_based --runtime=" + warmupSeconds));
        }
        long measured = measuredStart(firstStart, warmupSeconds);
        for (int i = 0; i < PHASES.size(); i++) {
            Phase p = PHASES.get(i);
            long start = phaseStart(measured, i, seconds);
            s.append(waitUntil(start))
                    .append(GuestScripts.report("late." + p.key(), "echo $(( $(date +%s) - " + start + " ))"))
                    .append(GuestScripts.fio(p.key(), "--filename=" + DEVICE + " --ioengine=libaio --direct=1 --bs=4k"
                            + " --rw=" + p.rw() + " --iodepth=32 --numjobs=1 --time_based --runtime=" + seconds))
                    .append("echo @@MARK ").append(p.key()).append("-done\n");
        }
        return s.toString();
    }

    /** Idles until the epoch second {@code start}. */
    private static String waitUntil(long start) {
        // A clock before 2001 means no RTC time: go at once (and be reported late by decades) rather than hang.
        return "while [ $(date +%s) -lt " + start + " ] && [ $(date +%s) -gt 1000000000 ]; do sleep 0.1; done\n";
    }
}
