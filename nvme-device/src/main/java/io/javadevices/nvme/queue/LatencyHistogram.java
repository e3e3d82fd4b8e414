package io.javadevices.nvme.queue;

import io.javadevices.pci.Histogram;

/**
 * Latencies in nanoseconds, counted in log-linear buckets (the layout of HdrHistogram and of fio's latency
 * bins): values below 16 have a bucket each; above, every power of two is split into 16 equal buckets, so a
 * bucket's width is at most 1/16 of its value and a percentile is within about 6 % of the true one. 960
 * buckets cover every {@code long}. Single writer (the queue worker that owns it), no allocation, no lock;
 * readers (the statistics) sum copies with {@link #addTo} and may see a count a moment old. {@link #toHistogram}
 * exports it in a few readable buckets (Prometheus' {@code le} labels).
 */
public final class LatencyHistogram {
    private static final int SUB_BITS = 4, SUB = 1 << SUB_BITS;
    static final int BUCKETS = (63 - SUB_BITS + 1) * SUB; // the top bit of a positive long is bit 62

    private final long[] counts = new long[BUCKETS];
    private long total;
    private long max;
    /** Sum of the recorded values in nanoseconds (a Prometheus histogram's {@code _sum}). */
    private long sum;

    /** Bucket of {@code nanos} (negative values count as 0). */
    static int bucket(long nanos) {
        if (nanos < SUB) {
            return (int) Math.max(0, nanos);
        }
        int exponent = 63 - Long.numberOfLeadingZeros(nanos); // >= SUB_BITS
        int mantissa = (int) (nanos >>> (exponent - SUB_BITS)) & (SUB - 1);
        return (exponent - SUB_BITS + 1) * SUB + mantissa;
    }

    /** The largest value that falls into {@code bucket}. */
    static long upperBound(int bucket) {
        if (bucket < SUB) {
            return bucket;
        }
        int exponent = bucket / SUB + SUB_BITS - 1;
        long mantissa = bucket % SUB;
        long low = (SUB + mantissa) << (exponent - SUB_BITS);
        long width = 1L << (exponent - SUB_BITS);
        return low + width - 1 < 0 ? Long.MAX_VALUE : low + width - 1;
    }

    public void record(long nanos) {
        counts[bucket(nanos)]++;
        total++;
        sum += nanos;
        if (nanos > max) {
            max = nanos;
        }
    }

    public long count() {
        return total;
    }

    public long max() {
        return max;
    }

    public long sum() {
        return sum;
    }

    /**
     * The value at or below which {@code fraction} (0..1) of the recorded values lie: the upper bound of the
     * bucket holding that rank, never above the largest value seen; 0 when empty.
     */
    public long percentile(double fraction) {
        if (total == 0) {
            return 0;
        }
        long rank = Math.max(1, (long) Math.ceil(fraction * total));
        long seen = 0;
        for (int b = 0; b < BUCKETS; b++) {
            seen += counts[b];
            if (seen >= rank) {
                return Math.min(upperBound(b), max);
            }
        }
        return max;
    }

    /** Adds this histogram's counts into {@code sum} (the statistics sum the queues' histograms). */
    public void addTo(LatencyHistogram sum) {
        long n = 0;
        for (int b = 0; b < BUCKETS; b++) {
            long c = counts[b];
            sum.counts[b] += c;
            n += c;
        }
        sum.total += n; // the buckets read, not total: a concurrent record never makes the sum inconsistent
        sum.max = Math.max(sum.max, max);
        sum.sum += this.sum;
    }

    /**
     * The export buckets' inclusive upper bounds in nanoseconds: 1, 2, 5 steps from 1 us to 10 s, then open-ended.
     * Readable {@code le} labels rather than the 960 fine buckets: a fine bucket that straddles a bound is counted
     * in the next export bucket, so an observation is reported at most 1/16 slower than it was, never faster.
     */
    static final long[] EXPORT_BOUNDS = exportBounds();

    private static long[] exportBounds() {
        long[] b = new long[23];
        int i = 0;
        for (long decade = 1_000; decade <= 1_000_000_000L; decade *= 10) {
            b[i++] = decade;
            b[i++] = 2 * decade;
            b[i++] = 5 * decade;
        }
        b[i++] = 10_000_000_000L;
        b[i] = Long.MAX_VALUE;
        return b;
    }

    /** A snapshot in the export buckets ({@link #EXPORT_BOUNDS}), with the exact sum. Allocates: statistics only. */
    public Histogram toHistogram() {
        long[] out = new long[EXPORT_BOUNDS.length];
        int to = 0;
        for (int b = 0; b < BUCKETS; b++) {
            long c = counts[b];
            if (c == 0) {
                continue;
            }
            long upper = upperBound(b);
            while (EXPORT_BOUNDS[to] < upper) {
                to++; // ends at the last, open-ended bound at the latest
            }
            out[to] += c;
        }
        return new Histogram(EXPORT_BOUNDS.clone(), out, sum);
    }
}
