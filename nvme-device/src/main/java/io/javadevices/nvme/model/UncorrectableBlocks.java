package io.javadevices.nvme.model;

import java.util.Map;
import java.util.TreeMap;

/**
 * The logical blocks of one namespace that Write Uncorrectable (NVMe 1.4 §6, Write Uncorrectable command) marked as unreadable:
 * a set of disjoint, non-adjacent block ranges. A Read, Compare, Verify or Copy touching a marked block fails with
 * Unrecovered Read Error; a Write, Write Zeroes, Dataset Management deallocate or Copy onto it heals it (the host
 * "rewrote" the block). Get LBA Status and the LBA Status Information log report the ranges as tracked
 * potentially unrecoverable LBAs.
 *
 * <p>Marks are rare (a test or fault-injection tool sets them), so the set is a lock-guarded {@link TreeMap};
 * the I/O hot path only reads the volatile {@link #isEmpty()} flag and takes the lock only once some block was
 * marked. Marks live as long as the controller process (a real drive keeps them on media; the backends have
 * nowhere to keep them).
 *
 * <p>Bounded memory: a Write Uncorrectable that would need more than {@link #MAX_RANGES} ranges is refused
 * ({@link #mark} returns false). Writes can split ranges further; beyond {@link #HARD_LIMIT} ranges a write that
 * splits a range drops the (smaller) remainder on one side rather than growing the set without bound, so a
 * guest that shreds one huge mark into millions of pieces loses marks, never host memory. Counted in
 * {@link #dropped()}.
 */
public final class UncorrectableBlocks {
    /** Most ranges a Write Uncorrectable may leave in the set. */
    public static final int MAX_RANGES = 16_384;
    /** Most ranges writes may split the set into. */
    public static final int HARD_LIMIT = 2 * MAX_RANGES;

    /** First block → end block (exclusive). Guarded by {@code this}. */
    private final TreeMap<Long, Long> ranges = new TreeMap<>();
    /** True while no block is marked: the lock-free check of the read and write paths. */
    private volatile boolean empty = true;
    private long generation;
    private long dropped;

    /** True if no block is marked (a volatile read: no lock, no allocation). */
    public boolean isEmpty() {
        return empty;
    }

    /**
     * Marks {@code [slba, slba + count)} (the caller checked it lies in the namespace); false, and nothing
     * marked, if that would need more than {@link #MAX_RANGES} ranges.
     */
    public synchronized boolean mark(long slba, long count) {
        long start = slba;
        long end = slba + count;
        Map.Entry<Long, Long> before = ranges.floorEntry(start);
        if (before != null && before.getValue() >= start) {
            start = before.getKey();
            end = Math.max(end, before.getValue());
        }
        // Ranges that start inside or right after [start, end] merge into it.
        var merged = ranges.subMap(start, true, end, true);
        if (merged.isEmpty() && ranges.size() >= MAX_RANGES) {
            return false;
        }
        for (long e : merged.values()) {
            end = Math.max(end, e);
        }
        merged.clear();
        ranges.put(start, end);
        changed();
        return true;
    }

    /** Unmarks {@code [slba, slba + count)}: the blocks were rewritten or deallocated. */
    public synchronized void clear(long slba, long count) {
        if (ranges.isEmpty()) {
            return;
        }
        long end = slba + count;
        Map.Entry<Long, Long> before = ranges.lowerEntry(slba);
        boolean touched = false;
        if (before != null && before.getValue() > slba) {
            long tail = before.getValue();
            ranges.put(before.getKey(), slba);
            if (tail > end) {
                if (ranges.size() >= HARD_LIMIT) {
                    dropped += tail - end; // see the class comment: bounded memory over a kept remainder
                } else {
                    ranges.put(end, tail);
                }
            }
            touched = true;
        }
        var inside = ranges.subMap(slba, true, end, false);
        if (!inside.isEmpty()) {
            long tail = inside.lastEntry().getValue();
            inside.clear();
            if (tail > end) {
                ranges.put(end, tail);
            }
            touched = true;
        }
        if (touched) {
            changed();
        }
    }

    /** The first marked block in {@code [slba, slba + count)}, or -1 if none is. */
    public synchronized long firstMarked(long slba, long count) {
        long end = slba + count;
        Map.Entry<Long, Long> before = ranges.floorEntry(slba);
        if (before != null && before.getValue() > slba) {
            return slba;
        }
        Long next = ranges.higherKey(slba);
        return next != null && next < end ? next : -1;
    }

    /**
     * Copies the marked ranges that intersect {@code [from, to)}, clipped to it, in ascending order: start in
     * {@code out[2i]}, length in {@code out[2i + 1]}. Returns how many were copied (at most {@code out.length / 2});
     * {@code more[0]} is set to true if further ranges did not fit.
     */
    public synchronized int ranges(long from, long to, long[] out, boolean[] more) {
        int n = 0;
        more[0] = false;
        Long first = ranges.floorKey(from);
        for (Map.Entry<Long, Long> e : ranges.tailMap(first != null ? first : from, true).entrySet()) {
            long start = Math.max(e.getKey(), from);
            long end = Math.min(e.getValue(), to);
            if (e.getKey() >= to) {
                break;
            }
            if (start >= end) {
                continue;
            }
            if (2 * n + 1 >= out.length) {
                more[0] = true;
                break;
            }
            out[2 * n] = start;
            out[2 * n + 1] = end - start;
            n++;
        }
        return n;
    }

    /** Number of marked blocks (walks the set: for the log page, not for the I/O path). */
    public synchronized long blocks() {
        long total = 0;
        for (Map.Entry<Long, Long> e : ranges.entrySet()) {
            total += e.getValue() - e.getKey();
        }
        return total;
    }

    /** Number of ranges in the set. */
    public synchronized int size() {
        return ranges.size();
    }

    /** Incremented on every change of the set (the LBA Status Information log's generation counter). */
    public synchronized long generation() {
        return generation;
    }

    /** Marked blocks unmarked without being written, to bound the set (see the class comment). */
    public synchronized long dropped() {
        return dropped;
    }

    private void changed() {
        generation++;
        empty = ranges.isEmpty();
    }
}
