package io.javadevices.nvme.queue;

import io.javadevices.pci.GuestMemory;

import java.util.List;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Supplier;

/**
 * The controller's guest memory unmap barrier ({@link GuestMemory.DmaQuiescer}): after the host removed a region
 * from the table and before it releases the memory, waits until nothing a queue worker had started can still
 * touch it: no batch that began before the removal is still executing commands, and every asynchronous operation
 * in flight at that moment (a read the kernel or a pool thread may still be filling) has completed.
 *
 * <p>Dekker, for each worker: the host stored the new region table (a volatile store) before calling this, which
 * then loads the worker's batch epoch (volatile); the worker stores its epoch odd (volatile) before it maps any
 * data pointer, which loads the region table (volatile). Both sides store then load, so at least one sees the
 * other: either the worker's map misses the removed region (Data Transfer Error, nothing reaches that memory), or
 * the epoch read here is odd and this waits for that batch to end. Every in-flight slot claimed in that batch or
 * earlier was published (release store) before the epoch went even again, so the odd slot generations read after
 * it are exactly the operations that may hold the old memory; each is waited for until its generation moves.
 * (Counting claimed against completed operations would not do: they complete out of order, so the counts can
 * meet while an old operation is still in flight.) New operations cannot reach the removed region, so the wait
 * ends even under continuous I/O. Nothing of this costs the I/O path a fence: the epoch is written twice per
 * batch and the slot generations with plain release stores.
 */
public final class WorkerQuiescer implements GuestMemory.DmaQuiescer {
    private final Supplier<List<QueueWorker>> workers;

    /** @param workers the live queue workers ({@link QueueTable#liveWorkers}) */
    public WorkerQuiescer(Supplier<List<QueueWorker>> workers) {
        this.workers = workers;
    }

    @Override
    public boolean awaitQuiescent(long timeoutNanos) {
        long deadline = System.nanoTime() + timeoutNanos;
        for (QueueWorker w : workers.get()) {
            if (!quiescent(w, deadline)) {
                return false;
            }
        }
        return true;
    }

    private static boolean quiescent(QueueWorker w, long deadline) {
        long epoch = w.batchEpoch();
        if ((epoch & 1) != 0 && !w.isCurrentThread()) {
            while (w.batchEpoch() == epoch && !w.terminated()) {
                if (!napUntil(deadline)) {
                    return false;
                }
            }
        }
        InFlight slots = w.inFlight();
        if (slots == null || w.terminated()) {
            return true; // an ended worker waited for its operations before it ended
        }
        int[] snapshot = new int[slots.capacity()];
        slots.snapshot(snapshot);
        while (!slots.quiescentSince(snapshot) && !w.terminated()) {
            if (!napUntil(deadline)) {
                return false;
            }
        }
        return true;
    }

    private static boolean napUntil(long deadline) {
        if (System.nanoTime() - deadline >= 0) {
            return false;
        }
        LockSupport.parkNanos(20_000);
        return true;
    }
}
