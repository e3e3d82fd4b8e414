package io.javadevices.pci;

import java.util.Objects;

/**
 * A snapshot of a latency histogram a device keeps (e.g. an NVMe namespace's command latencies), in the shape
 * Prometheus histograms take: cumulative-free bucket counts with their upper bounds, the total count and sum.
 *
 * @param upperBoundsNanos each bucket's inclusive upper bound in nanoseconds, ascending; the last bucket is
 *                         open-ended ({@code Long.MAX_VALUE})
 * @param counts           observations per bucket (not cumulative), same length as {@code upperBoundsNanos}
 * @param sumNanos         the sum of all observations in nanoseconds
 */
public record Histogram(long[] upperBoundsNanos, long[] counts, long sumNanos) {
    public Histogram {
        Objects.requireNonNull(upperBoundsNanos, "upperBoundsNanos");
        Objects.requireNonNull(counts, "counts");
        if (upperBoundsNanos.length != counts.length || counts.length == 0) {
            throw new IllegalArgumentException("one count per bucket, at least one bucket");
        }
    }

    /** Total observations. */
    public long count() {
        long n = 0;
        for (long c : counts) {
            n += c;
        }
        return n;
    }
}
