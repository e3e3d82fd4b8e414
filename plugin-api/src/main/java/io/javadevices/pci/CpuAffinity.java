package io.javadevices.pci;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Pins the calling thread to one CPU (Linux {@code sched_setaffinity(0, ...)}, through the FFM API: the plugin API
 * has no dependency) and parses CPU lists in the kernel's {@code cpuset} syntax ({@code 0-3,8}).
 */
public final class CpuAffinity {
    /** Highest CPU number + 1 accepted: a {@code cpu_set_t} of glibc holds 1024 CPUs. */
    public static final int MAX_CPUS = 1024;

    private CpuAffinity() {
    }

    /**
     * Parses {@code 0-3,8}: comma-separated CPU numbers and inclusive ranges, in any order, no duplicates.
     *
     * @throws IllegalArgumentException with a message naming the bad element
     */
    public static int[] parse(String list) {
        if (list == null || list.isBlank()) {
            throw new IllegalArgumentException("empty CPU list");
        }
        List<Integer> cpus = new ArrayList<>();
        boolean[] seen = new boolean[MAX_CPUS];
        for (String part : list.split(",", -1)) {
            String p = part.strip();
            int dash = p.indexOf('-');
            int from = cpu(dash < 0 ? p : p.substring(0, dash), p);
            int to = dash < 0 ? from : cpu(p.substring(dash + 1), p);
            if (to < from) {
                throw new IllegalArgumentException("CPU range " + p + " runs backwards");
            }
            for (int c = from; c <= to; c++) {
                if (seen[c]) {
                    throw new IllegalArgumentException("CPU " + c + " listed twice");
                }
                seen[c] = true;
                cpus.add(c);
            }
        }
        return cpus.stream().mapToInt(Integer::intValue).toArray();
    }

    private static int cpu(String s, String element) {
        if (s.isEmpty() || s.length() > 4 || !s.chars().allMatch(ch -> ch >= '0' && ch <= '9')) {
            throw new IllegalArgumentException("bad CPU list element \"" + element + "\" (expected N or N-M)");
        }
        int c = Integer.parseInt(s);
        if (c >= MAX_CPUS) {
            throw new IllegalArgumentException("CPU " + c + " out of range (0.." + (MAX_CPUS - 1) + ")");
        }
        return c;
    }

    /**
     * Pins the calling thread to {@code cpu}; returns null on success, else why not (no such CPU in the
     * process's allowed set, native access denied, not Linux). Never throws.
     */
    public static String pinCurrentThread(int cpu) {
        try {
            MethodHandle set = Native.SCHED_SETAFFINITY;
            if (set == null) {
                return "sched_setaffinity not available";
            }
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment mask = arena.allocate(MAX_CPUS / 8, 8);
                mask.set(JAVA_LONG, (cpu / 64) * 8L, 1L << (cpu % 64));
                int rc = (int) set.invokeExact(0, (long) (MAX_CPUS / 8), mask);
                return rc == 0 ? null : "sched_setaffinity(cpu " + cpu + ") failed";
            }
        } catch (Throwable t) {
            return t.toString();
        }
    }

    /** The downcall, looked up once; null where it does not exist (not Linux) or native access is denied. */
    private static final class Native {
        static final MethodHandle SCHED_SETAFFINITY = lookup();

        private static MethodHandle lookup() {
            try {
                Linker linker = Linker.nativeLinker();
                return linker.defaultLookup().find("sched_setaffinity")
                        .map(f -> linker.downcallHandle(f, FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS)))
                        .orElse(null);
            } catch (RuntimeException | Error e) {
                return null;
            }
        }
    }
}
