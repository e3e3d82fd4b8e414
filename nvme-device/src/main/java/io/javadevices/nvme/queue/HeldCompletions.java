package io.javadevices.nvme.queue;

/**
 * Completions a queue worker could not post yet: its CQ was full (a slow or hostile host that does not consume) or
 * Bus Master Enable was clear. A worker on a shared pool thread must not wait for the host, so it keeps them here, in
 * the order they completed, fetches no further command while any is held, and posts them once the host frees CQ
 * space (the CQ EventIdx armed meanwhile, QEMU commit fa5db2aa168b).
 *
 * <p>Bounded by construction: every held completion is a command fetched and not yet completed, and a worker
 * has at most its in-flight slots plus one synchronous command (plus the Asynchronous Event Requests of the admin
 * queue) of those. Preallocated; worker thread only.
 */
final class HeldCompletions {
    private final int[] cid;
    private final int[] status;
    private final int[] dw0;
    private int first;
    private int count;

    HeldCompletions(int capacity) {
        cid = new int[capacity];
        status = new int[capacity];
        dw0 = new int[capacity];
    }

    boolean isEmpty() {
        return count == 0;
    }

    int size() {
        return count;
    }

    /** Appends one; false if full (cannot happen within the bound above: a bug, reported by the worker). */
    boolean add(int c, int s, int d) {
        if (count == cid.length) {
            return false;
        }
        int at = (first + count) % cid.length;
        cid[at] = c;
        status[at] = s;
        dw0[at] = d;
        count++;
        return true;
    }

    int firstCid() {
        return cid[first];
    }

    int firstStatus() {
        return status[first];
    }

    int firstDw0() {
        return dw0[first];
    }

    void removeFirst() {
        first = first + 1 == cid.length ? 0 : first + 1;
        count--;
    }

    /** Drops everything (the worker stops: nothing more is posted). */
    void clear() {
        first = 0;
        count = 0;
    }
}
