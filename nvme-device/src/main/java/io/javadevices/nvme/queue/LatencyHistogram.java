package io.javadevices.nvme.queue;

/**
 * Latencies in nanoseconds, counted in log-linear buckets (the layout of HdrHistogram and of fio's latency
 * bins): values below 16 have a bucket each; above, every power of two is split into 16 equal buckets, so a
 * bucket's width is at most 1/16 of its value and a percentile is within about 6 % of the true one. 960
 * buckets cover every {@code long}. Single writer (the queue worker that owns it), no allocation, no lock;
 * readers (the statistics) sum copies with {@link #addTo} and may see a count a moment old.
 */
public final class LatencyHistogram {
    private static final int SUB_BITS = 4, SUB = 1 << SUB_BITS;
    static final int BUCKETS = (63 - SUB_BITS + 1) * SUB; // the top bit of a positive long is bit 62

    private final long[] counts = new long[BUCKETS];
    private long total;
    private long max;

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
    }
}
