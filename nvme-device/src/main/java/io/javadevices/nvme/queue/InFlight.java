package io.javadevices.nvme.queue;

import io.javadevices.nvme.backend.IoVector;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * The in-flight slots of one queue worker: what a command handed to an asynchronous backend needs once its
 * operation completes (CID, kind, namespace view, SLBA, byte count, flags, start time for the latency), plus its
 * {@link IoVector}. The slot index is the operation's engine tag. Capacity is {@code min(SQ size, 1024)}: a queue
 * never has more commands than entries in flight, and 1024 bounds the memory a huge SQ can pin.
 *
 * <p>Free slots form a LIFO stack, so a queue driven at depth 4 touches the same 4 slots over and over; a slot's
 * vector is created the first time the slot is used, so a deep SQ that is never used deep costs no memory. When
 * no slot is free the worker fetches no further SQE until one completes (backpressure: a command is never failed
 * for it).
 *
 * <p>Each slot has a generation, odd while it is claimed: {@link #quiescentSince} lets another thread wait until
 * every operation in flight at one moment has completed (the guest memory unmap barrier). Claim and release
 * publish it with release stores (plain moves on x86): the worker's batch epoch provides the StoreLoad fence (see
 * {@link WorkerQuiescer}). Everything else is worker-thread only.
 */
public final class InFlight {
    private static final VarHandle GEN = MethodHandles.arrayElementVarHandle(int[].class);

    private final int[] cid, kind, flags;
    private final long[] slba, bytes, start;
    private final NamespaceView[] view;
    private final IoVector[] vector;
    private final long[][] ranges;
    private final int[] rangeCount, rangeNext;
    private final int[] generation;
    private final int[] free;
    private int top;

    public InFlight(int capacity) {
        cid = new int[capacity];
        kind = new int[capacity];
        flags = new int[capacity];
        slba = new long[capacity];
        bytes = new long[capacity];
        start = new long[capacity];
        view = new NamespaceView[capacity];
        vector = new IoVector[capacity];
        ranges = new long[capacity][];
        rangeCount = new int[capacity];
        rangeNext = new int[capacity];
        generation = new int[capacity];
        free = new int[capacity];
        for (int i = 0; i < capacity; i++) {
            free[i] = capacity - 1 - i; // slot 0 on top
        }
        top = capacity;
    }

    public int capacity() {
        return free.length;
    }

    /** Slots in use now. Worker thread. */
    public int inUse() {
        return free.length - top;
    }

    public boolean hasFree() {
        return top > 0;
    }

    /** Takes a free slot (the worker checked {@link #hasFree} before fetching); -1 if none. */
    public int claim() {
        if (top == 0) {
            return -1;
        }
        int tag = free[--top];
        GEN.setRelease(generation, tag, generation[tag] + 1); // odd: in flight
        return tag;
    }

    /** True if {@code tag} is a slot in flight now (a completion for anything else is a backend's bug). */
    public boolean claimed(int tag) {
        return tag >= 0 && tag < generation.length && (generation[tag] & 1) != 0;
    }

    /** Returns a slot: its operation completed. */
    public void release(int tag) {
        view[tag] = null;
        if (vector[tag] != null) {
            vector[tag].clear(); // keeps no guest memory reachable
        }
        GEN.setRelease(generation, tag, generation[tag] + 1); // even: free
        free[top++] = tag;
    }

    /** Fills in what the completion needs. */
    public void set(int tag, int cid, int kind, NamespaceView view, long slba, long bytes, int flags, long start) {
        this.cid[tag] = cid;
        this.kind[tag] = kind;
        this.view[tag] = view;
        this.slba[tag] = slba;
        this.bytes[tag] = bytes;
        this.flags[tag] = flags;
        this.start[tag] = start;
    }

    /** The slot's buffer list, created with room for {@code pieces} buffers the first time the slot needs one. */
    public IoVector vector(int tag, int pieces) {
        IoVector v = vector[tag];
        if (v == null) {
            v = vector[tag] = new IoVector(pieces);
        }
        return v;
    }

    /** The slot's range list (Dataset Management: offset/length pairs in bytes), created on first use. */
    public long[] ranges(int tag, int pairs) {
        long[] r = ranges[tag];
        if (r == null) {
            r = ranges[tag] = new long[pairs * 2];
        }
        return r;
    }

    public void ranges(int tag, int count, int next) {
        rangeCount[tag] = count;
        rangeNext[tag] = next;
    }

    public int rangeCount(int tag) {
        return rangeCount[tag];
    }

    public int rangeNext(int tag) {
        return rangeNext[tag];
    }

    public long[] rangesOf(int tag) {
        return ranges[tag];
    }

    public int cid(int tag) {
        return cid[tag];
    }

    public int kind(int tag) {
        return kind[tag];
    }

    public int flags(int tag) {
        return flags[tag];
    }

    public NamespaceView view(int tag) {
        return view[tag];
    }

    public long slba(int tag) {
        return slba[tag];
    }

    public long bytes(int tag) {
        return bytes[tag];
    }

    public long start(int tag) {
        return start[tag];
    }

    /** The generations now (any thread): a snapshot for {@link #quiescentSince}. */
    void snapshot(int[] into) {
        for (int i = 0; i < generation.length; i++) {
            into[i] = (int) GEN.getAcquire(generation, i);
        }
    }

    /** True once every slot that was in flight in {@code snapshot} has completed since (any thread). */
    boolean quiescentSince(int[] snapshot) {
        for (int i = 0; i < generation.length; i++) {
            if ((snapshot[i] & 1) != 0 && (int) GEN.getAcquire(generation, i) == snapshot[i]) {
                return false;
            }
        }
        return true;
    }
}
