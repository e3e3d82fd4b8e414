package io.javadevices.nvme.queue;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** The log-linear latency histogram: bucket bounds, percentiles within a bucket's width, sums over queues. */
class LatencyHistogramTest {

    @Test
    void everyValueLiesInsideItsBucketAndBucketsAreContiguous() {
        long previousUpper = -1;
        for (int b = 0; b < LatencyHistogram.BUCKETS; b++) {
            long upper = LatencyHistogram.upperBound(b);
            assertTrue(upper > previousUpper, "bucket " + b + " grows");
            assertEquals(b, LatencyHistogram.bucket(previousUpper + 1), "first value of bucket " + b);
            assertEquals(b, LatencyHistogram.bucket(upper), "last value of bucket " + b);
            if (upper == Long.MAX_VALUE) {
                break;
            }
            previousUpper = upper;
        }
        assertEquals(LatencyHistogram.BUCKETS - 1, LatencyHistogram.bucket(Long.MAX_VALUE));
        assertEquals(0, LatencyHistogram.bucket(-5), "a clock step backwards counts as 0");
    }

    @Test
    void aBucketIsAtMostASixteenthOfItsValueWide() {
        for (long v : new long[] {16, 17, 1000, 123_456, 9_999_999_999L}) {
            long upper = LatencyHistogram.upperBound(LatencyHistogram.bucket(v));
            assertTrue(upper >= v && upper - v <= v / 16, v + " -> " + upper);
        }
    }

    @Test
    void percentilesOfAKnownDistribution() {
        LatencyHistogram h = new LatencyHistogram();
        assertEquals(0, h.percentile(0.99), "empty");
        for (int i = 1; i <= 1000; i++) {
            h.record(i * 1000L); // 1 us .. 1 ms
        }
        h.record(50_000_000L);   // one 50 ms outlier
        assertEquals(1001, h.count());
        assertWithin(500_000, h.percentile(0.50));
        assertWithin(990_000, h.percentile(0.99));
        assertWithin(1_000_000, h.percentile(0.999));
        assertEquals(50_000_000L, h.percentile(1.0), "the largest value, exactly");
        assertEquals(50_000_000L, h.max());
    }

    @Test
    void histogramsOfSeveralQueuesSum() {
        LatencyHistogram a = new LatencyHistogram(), b = new LatencyHistogram(), sum = new LatencyHistogram();
        for (int i = 0; i < 90; i++) {
            a.record(10_000);
        }
        for (int i = 0; i < 10; i++) {
            b.record(2_000_000);
        }
        a.addTo(sum);
        b.addTo(sum);
        assertEquals(100, sum.count());
        assertWithin(10_000, sum.percentile(0.90));
        assertWithin(2_000_000, sum.percentile(0.91));
        assertEquals(2_000_000, sum.max());
    }

    private static void assertWithin(long expected, long actual) {
        assertTrue(actual >= expected && actual - expected <= expected / 16, "expected ~" + expected + " got " + actual);
    }
    @Test
    void exportedHistogramHasReadableBoundsTheExactSumAndNeverReportsFaster() {
        LatencyHistogram h = new LatencyHistogram();
        long[] values = {500, 1_500, 1_600, 3_000, 40_000, 7_000_000, 20_000_000_000L};
        long sum = 0;
        for (long v : values) {
            h.record(v);
            sum += v;
        }
        io.javadevices.pci.Histogram out = h.toHistogram();
        assertEquals(sum, out.sumNanos(), "the exact sum");
        assertEquals(values.length, out.count());
        long[] bounds = out.upperBoundsNanos();
        assertEquals(1_000, bounds[0]);
        assertEquals(2_000, bounds[1]);
        assertEquals(5_000, bounds[2]);
        assertEquals(10_000_000_000L, bounds[bounds.length - 2]);
        assertEquals(Long.MAX_VALUE, bounds[bounds.length - 1]);
        assertEquals(1, out.counts()[0], "500 ns: up to 1 us");
        assertEquals(2, out.counts()[1], "1.5 and 1.6 us: up to 2 us");
        assertEquals(1, out.counts()[2], "3 us: up to 5 us");
        assertEquals(1, out.counts()[index(bounds, 50_000)], "40 us: up to 50 us");
        assertEquals(1, out.counts()[index(bounds, 10_000_000)], "7 ms: up to 10 ms");
        assertEquals(1, out.counts()[bounds.length - 1], "20 s: open-ended");
        // A fine bucket that straddles a bound goes up: 1000 ns shares the fine bucket 992..1023.
        LatencyHistogram edge = new LatencyHistogram();
        edge.record(1_000);
        assertEquals(1, edge.toHistogram().counts()[1], "reported at most 1/16 slower, never faster");

        LatencyHistogram total = new LatencyHistogram();
        h.addTo(total);
        edge.addTo(total);
        assertEquals(sum + 1_000, total.sum(), "sums add up over queues");
    }

    private static int index(long[] bounds, long bound) {
        for (int i = 0; i < bounds.length; i++) {
            if (bounds[i] == bound) {
                return i;
            }
        }
        throw new AssertionError("no bound " + bound);
    }
}
