package io.javadevices.nvme.backend;

import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Completions reported from other threads ({@link IoEngine#complete}) on their way to the worker that reaps them:
 * a bounded multi-producer, single-consumer ring of {@code (tag, result)} pairs, allocation-free and lock-free
 * (D. Vyukov's bounded queue: each cell carries a sequence number, producers claim a position with one
 * fetch-and-add and publish with a release store, the consumer reads with an acquire load).
 *
 * <p>Its capacity is at least the engine's tag count, and a tag is in flight at most once, so there are never
 * more completions waiting than cells: a producer never waits for space.
 */
public final class CompletionInbox {
    private final int mask;
    private final AtomicLongArray sequence;
    private final long[] values;
    private final AtomicLong tail = new AtomicLong();
    private long head; // consumer only

    /** @param tags the engine's capacity: the most completions that can be waiting at once */
    public CompletionInbox(int tags) {
        int capacity = Integer.highestOneBit(Math.max(2, tags) * 2 - 1);
        this.mask = capacity - 1;
        this.sequence = new AtomicLongArray(capacity);
        this.values = new long[capacity];
        for (int i = 0; i < capacity; i++) {
            sequence.set(i, i);
        }
    }

    /** Any thread. */
    public void offer(int tag, int result) {
        long position = tail.getAndIncrement();
        int cell = (int) position & mask;
        while (sequence.getAcquire(cell) != position) {
            Thread.onSpinWait(); // cannot happen while at most capacity completions wait (see the class comment)
        }
        values[cell] = ((long) tag << 32) | (result & 0xFFFF_FFFFL);
        sequence.setRelease(cell, position + 1);
    }

    /** True if a completion is waiting. Consumer thread. */
    public boolean nonEmpty() {
        return sequence.getAcquire((int) head & mask) == head + 1;
    }

    /** Delivers every waiting completion; returns how many. Consumer thread. */
    public int drain(IoEngine.Completions sink) {
        int n = 0;
        while (true) {
            int cell = (int) head & mask;
            if (sequence.getAcquire(cell) != head + 1) {
                return n;
            }
            long value = values[cell];
            sequence.setRelease(cell, head + mask + 1);
            head++;
            n++;
            sink.completed((int) (value >>> 32), (int) value);
        }
    }
}
