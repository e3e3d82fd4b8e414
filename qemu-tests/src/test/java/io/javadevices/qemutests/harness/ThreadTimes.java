package io.javadevices.qemutests.harness;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;

/**
 * This JVM's threads' CPU time and context switches, summed per thread family, from {@code /proc/self/task} (the
 * kernel's per-thread {@code stat} and {@code status}, proc(5)): for a benchmark to say which of the in-process
 * server's threads spend the CPU it measures, and how often they sleep ({@code voluntary_ctxt_switches}) or are
 * preempted ({@code nonvoluntary_ctxt_switches}). A family is the thread's name ({@code comm}, cut by the kernel to 15
 * characters) without a trailing number: {@code nvme-poll-1} and {@code nvme-poll-2} are one family. Threads that ended between two snapshots are missing from the later one (their time is not counted).
 */
public record ThreadTimes(Map<String, Family> families) {
    /** A family's totals: CPU in clock ticks (utime + stime) and the two context-switch counts. */
    public record Family(long ticks, long voluntary, long involuntary) {
        Family plus(Family o) {
            return new Family(ticks + o.ticks, voluntary + o.voluntary, involuntary + o.involuntary);
        }

        Family minus(Family o) {
            return new Family(ticks - o.ticks, voluntary - o.voluntary, involuntary - o.involuntary);
        }
    }

    /** USER_HZ: the unit of utime and stime in {@code stat} (100 on every Linux architecture Java runs on). */
    public static final int TICKS_PER_SECOND = 100;

    /** A snapshot of every thread of this process; empty where {@code /proc} is not there. */
    public static ThreadTimes now() {
        Map<String, Family> families = new TreeMap<>();
        try (DirectoryStream<Path> tasks = Files.newDirectoryStream(Path.of("/proc/self/task"))) {
            for (Path task : tasks) {
                try {
                    String name = family(Files.readString(task.resolve("comm")).strip());
                    String stat = Files.readString(task.resolve("stat"));
                    // Fields after the ")" that ends comm (which may hold spaces): state is field 3, utime 14, stime 15.
                    String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                    long ticks = Long.parseLong(f[11]) + Long.parseLong(f[12]);
                    long voluntary = 0;
                    long involuntary = 0;
                    for (String line : Files.readAllLines(task.resolve("status"))) {
                        if (line.startsWith("voluntary_ctxt_switches:")) {
                            voluntary = Long.parseLong(line.substring(line.indexOf(':') + 1).strip());
                        } else if (line.startsWith("nonvoluntary_ctxt_switches:")) {
                            involuntary = Long.parseLong(line.substring(line.indexOf(':') + 1).strip());
                        }
                    }
                    families.merge(name, new Family(ticks, voluntary, involuntary), Family::plus);
                } catch (IOException | RuntimeException gone) {
                    // the thread ended while being read
                }
            }
        } catch (IOException noProc) {
            return new ThreadTimes(Map.of());
        }
        return new ThreadTimes(families);
    }

    /** What each family did since {@code before} (families without CPU or switches in between left out). */
    public ThreadTimes since(ThreadTimes before) {
        Map<String, Family> delta = new TreeMap<>();
        families.forEach((name, now) -> {
            Family d = now.minus(before.families.getOrDefault(name, new Family(0, 0, 0)));
            if (d.ticks > 0 || d.voluntary > 0 || d.involuntary > 0) {
                delta.put(name, d);
            }
        });
        return new ThreadTimes(delta);
    }

    static String family(String comm) {
        return comm.replaceFirst("([-# ]?[0-9]+)+$", "");
    }

    /**
     * One line per family, busiest first, per {@code ios} I/Os: CPU µs, sleeps and preemptions per I/O; families
     * under 1 % of the total CPU are summed as "other".
     */
    public String perIo(double ios) {
        long total = families.values().stream().mapToLong(Family::ticks).sum();
        StringBuilder sb = new StringBuilder();
        Family other = new Family(0, 0, 0);
        for (Map.Entry<String, Family> e : families.entrySet().stream()
                .sorted((a, b) -> Long.compare(b.getValue().ticks, a.getValue().ticks)).toList()) {
            Family f = e.getValue();
            if (f.ticks * 100 < total) {
                other = other.plus(f);
                continue;
            }
            line(sb, e.getKey(), f, ios);
        }
        if (other.ticks > 0 || other.voluntary > 0) {
            line(sb, "other", other, ios);
        }
        return sb.toString();
    }

    private static void line(StringBuilder sb, String name, Family f, double ios) {
        sb.append(String.format("  %-16s %7.2f µs CPU  %6.3f sleeps  %6.3f preemptions per I/O%n", name,
                f.ticks * 1e6 / TICKS_PER_SECOND / ios, f.voluntary / ios, f.involuntary / ios));
    }
}
