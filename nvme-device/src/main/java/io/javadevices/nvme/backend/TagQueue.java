package io.javadevices.nvme.backend;

import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * A bounded lock-free queue of tags with one producer (the queue worker) and many consumers (its pool
 * threads): D. Vyukov's bounded queue, as {@link CompletionInbox}, with the consumers claiming positions by
 * compare-and-set. Its capacity is at least the tag count and a tag is queued at most once, so it is never full.
 */
final class TagQueue {
    private final int mask;
    private final AtomicLongArray sequence;
    private final int[] tags;
    private final AtomicLong head = new AtomicLong();
    private long tail; // the producer's

    TagQueue(int tagCount) {
        int capacity = Integer.highestOneBit(Math.max(2, tagCount) * 2 - 1);
        this.mask = capacity - 1;
        this.sequence = new AtomicLongArray(capacity);
        this.tags = new int[capacity];
        for (int i = 0; i < capacity; i++) {
            sequence.set(i, i);
        }
    }

    /** Producer thread only. */
    void offer(int tag) {
        int cell = (int) tail & mask;
        while (sequence.getAcquire(cell) != tail) {
            Thread.onSpinWait(); // cannot happen (see the class comment)
        }
        tags[cell] = tag;
        sequence.setRelease(cell, tail + 1);
        tail++;
    }

    /** Any consumer: the next tag, or -1 if none is queued. */
    int poll() {
        while (true) {
            long position = head.get();
            int cell = (int) position & mask;
            long seq = sequence.getAcquire(cell);
            if (seq != position + 1) {
                if (seq <= position) {
                    return -1; // empty
                }
                continue; // another consumer took it: look again
            }
            if (head.compareAndSet(position, position + 1)) {
                int tag = tags[cell];
                sequence.setRelease(cell, position + mask + 1);
                return tag;
            }
        }
    }

    boolean nonEmpty() {
        long position = head.get();
        return sequence.getAcquire((int) position & mask) == position + 1;
    }
}
