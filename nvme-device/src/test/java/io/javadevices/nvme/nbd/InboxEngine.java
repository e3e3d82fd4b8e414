package io.javadevices.nvme.nbd;

import io.javadevices.nvme.backend.AsyncIo;
import io.javadevices.nvme.backend.BlockBackend;
import io.javadevices.nvme.backend.CompletionInbox;
import io.javadevices.nvme.backend.IoEngine;

import java.util.Arrays;

import java.util.concurrent.locks.LockSupport;

/**
 * A minimal {@link IoEngine} for the NBD tests: completions from the connection's reader thread land in a
 * {@link CompletionInbox}; the test thread plays the queue worker, reaping and awaiting them. Like the worker, it
 * starts what the paths it opened ({@link #open}) prepared before it waits ({@link AsyncIo#submit}).
 */
final class InboxEngine implements IoEngine {
    private final CompletionInbox inbox;
    private final int capacity;
    private volatile Thread waiter;
    /** The paths {@link #open} opened (an array: a wait allocates nothing, see {@code NbdAllocationTest}). */
    private volatile AsyncIo[] paths = new AsyncIo[0];

    InboxEngine(int capacity) {
        this.capacity = capacity;
        this.inbox = new CompletionInbox(capacity);
    }

    @Override
    public String name() {
        return "test-inbox";
    }

    @Override
    public int capacity() {
        return capacity;
    }

    /** {@code backend}'s asynchronous path on this engine (null if it has none), started by every wait. */
    AsyncIo open(BlockBackend backend) {
        AsyncIo io = backend.openAsync(this);
        if (io != null) {
            synchronized (this) {
                AsyncIo[] more = Arrays.copyOf(paths, paths.length + 1);
                more[paths.length] = io;
                paths = more;
            }
        }
        return io;
    }

    /** The worker's batch end: the engine's submit, then each path's. */
    @Override
    public void submit() {
        AsyncIo[] opened = paths;
        for (int i = 0; i < opened.length; i++) {
            opened[i].submit();
        }
    }

    @Override
    public int reap(Completions sink) {
        return inbox.drain(sink);
    }

    @Override
    public void await(long nanos) {
        submit();
        waiter = Thread.currentThread();
        if (!inbox.nonEmpty()) {
            LockSupport.parkNanos(this, nanos);
        }
        waiter = null;
    }

    @Override
    public void wake() {
        Thread t = waiter;
        if (t != null) {
            LockSupport.unpark(t);
        }
    }

    @Override
    public void complete(int tag, int result) {
        inbox.offer(tag, result);
        wake();
    }

    @Override
    public void close() {
    }

    /**
     * Reaps until {@code count} completions arrived or {@code timeoutNanos} passed, recording each into
     * {@code results[tag]} and the tags in arrival order into {@code order}; returns how many arrived.
     */
    int awaitCompletions(int count, long timeoutNanos, int[] results, int[] order) {
        long end = System.nanoTime() + timeoutNanos;
        int[] got = {0};
        while (got[0] < count && System.nanoTime() - end < 0) {
            reap((tag, result) -> {
                results[tag] = result;
                if (order != null) {
                    order[got[0]] = tag;
                }
                got[0]++;
            });
            if (got[0] < count) {
                await(10_000_000);
            }
        }
        return got[0];
    }
}
