package io.javadevices.nvme.model;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class UncorrectableBlocksTest {
    private static String ranges(UncorrectableBlocks u) {
        long[] out = new long[64];
        boolean[] more = new boolean[1];
        int n = u.ranges(0, Long.MAX_VALUE, out, more);
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < n; i++) {
            s.append(i > 0 ? " " : "").append(out[2 * i]).append('+').append(out[2 * i + 1]);
        }
        return s.toString();
    }

    @Test
    void marksMergeAndClearsSplit() {
        UncorrectableBlocks u = new UncorrectableBlocks();
        assertTrue(u.isEmpty());
        assertEquals(-1, u.firstMarked(0, 1000));
        assertTrue(u.mark(10, 5));
        assertFalse(u.isEmpty());
        assertTrue(u.mark(20, 5));
        assertEquals("10+5 20+5", ranges(u));
        assertTrue(u.mark(15, 5));            // adjacent on both sides: one range
        assertEquals("10+15", ranges(u));
        assertTrue(u.mark(5, 30));            // covers it
        assertEquals("5+30", ranges(u));
        assertEquals(30, u.blocks());
        u.clear(10, 5);                       // a hole
        assertEquals("5+5 15+20", ranges(u));
        assertEquals(-1, u.firstMarked(10, 5));
        assertEquals(15, u.firstMarked(10, 6));
        assertEquals(12 + 5, u.firstMarked(17, 100));
        u.clear(0, 7);                        // head of the first
        u.clear(30, 100);                     // tail of the second
        assertEquals("7+3 15+15", ranges(u));
        u.clear(8, 20);                       // across both
        assertEquals("7+1 28+2", ranges(u));
        u.clear(0, 1000);
        assertTrue(u.isEmpty());
        assertEquals(0, u.blocks());
        assertEquals("", ranges(u));
    }

    @Test
    void rangesAreClippedAndBounded() {
        UncorrectableBlocks u = new UncorrectableBlocks();
        for (int i = 0; i < 10; i++) {
            u.mark(100L * i, 10);
        }
        long[] out = new long[7];                 // room for 3 ranges
        boolean[] more = new boolean[1];
        assertEquals(3, u.ranges(105, 1000, out, more));
        assertTrue(more[0]);
        assertArrayEquals(new long[] {105, 5, 200, 10, 300, 10}, java.util.Arrays.copyOf(out, 6));
        assertEquals(1, u.ranges(205, 208, out, more));
        assertFalse(more[0]);
        assertEquals(205, out[0]);
        assertEquals(3, out[1]);
        assertEquals(0, u.ranges(110, 200, out, more), "between two ranges");
    }

    @Test
    void concurrentMarksAndClearsOfDisjointAreasLeaveTheExpectedSet() throws Exception {
        UncorrectableBlocks u = new UncorrectableBlocks();
        Thread[] threads = new Thread[4];
        for (int t = 0; t < threads.length; t++) {
            long base = 1_000_000L * t;
            threads[t] = new Thread(() -> {
                for (int i = 0; i < 2000; i++) {
                    u.mark(base + 10L * i, 5);
                    if (i % 2 == 1) {
                        u.clear(base + 10L * i, 5);   // every other mark is rewritten again
                    }
                }
            });
        }
        for (Thread t : threads) {
            t.start();
        }
        for (Thread t : threads) {
            t.join();
        }
        assertEquals(4 * 1000, u.size());
        assertEquals(4 * 1000 * 5, u.blocks());
        assertEquals(1_000_000L * 3 + 10 * 1998, u.firstMarked(1_000_000L * 3 + 10 * 1997, 100));
    }

    @Test
    void theSetIsBounded() {
        UncorrectableBlocks u = new UncorrectableBlocks();
        for (int i = 0; i < UncorrectableBlocks.MAX_RANGES; i++) {
            assertTrue(u.mark(2L * i, 1));
        }
        assertFalse(u.mark(1L << 40, 1), "one range too many");
        assertTrue(u.mark(1, 1), "merging with existing ranges is always possible");
        assertEquals(UncorrectableBlocks.MAX_RANGES - 1, u.size(), "blocks 0, 1 and 2 are now one range");
        UncorrectableBlocks big = new UncorrectableBlocks();
        assertTrue(big.mark(0, 1L << 20));
        for (int i = 0; i < UncorrectableBlocks.HARD_LIMIT + 10; i++) {
            big.clear(2L * i + 1, 1);             // shred it
        }
        assertTrue(big.size() <= UncorrectableBlocks.HARD_LIMIT, "writes cannot grow the set without bound");
        assertTrue(big.dropped() > 0);
        assertEquals(-1, big.firstMarked(1, 1), "written blocks are never left marked");
    }
}
