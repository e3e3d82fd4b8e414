package io.javadevices.nvme.nbd;

import io.javadevices.nvme.backend.IoEngine;
import io.javadevices.nvme.backend.IoVector;

import java.io.IOException;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * The engine behind {@link NbdBackend}'s synchronous methods (admin paths, commands kept synchronous): each call
 * takes a free tag, starts the operation on the backend's asynchronous path and waits for its completion on a
 * latch. Not the hot path: it may allocate and block.
 */
final class NbdSyncCalls implements IoEngine {
    private static final int TAGS = 64;
    private final ArrayBlockingQueue<Integer> free = new ArrayBlockingQueue<>(TAGS);
    private final int[] results = new int[TAGS];
    private final CountDownLatch[] latches = new CountDownLatch[TAGS];
    /** One vector per tag, reused (each holds a native iovec array: not allocated per call). */
    private final IoVector[] vectors = new IoVector[TAGS];

    NbdSyncCalls() {
        for (int tag = 0; tag < TAGS; tag++) {
            free.add(tag);
            vectors[tag] = new IoVector(1);
        }
    }

    interface Operation {
        /** Starts the operation with {@code tag}; {@code vector} is empty, for the caller's one buffer. */
        void start(int tag, IoVector vector);
    }

    /** Runs {@code operation} and returns its result (bytes or 0); a negative result is thrown as an IOException. */
    int call(Operation operation, long timeoutNanos, String what) throws IOException {
        Integer tag;
        try {
            tag = free.take();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(what + ": interrupted");
        }
        CountDownLatch latch = new CountDownLatch(1);
        latches[tag] = latch;
        vectors[tag].clear();
        operation.start(tag, vectors[tag]);
        boolean done;
        try {
            // The backend fails a request past its deadline itself; this wait is only a safety net beyond it.
            done = latch.await(timeoutNanos + TimeUnit.SECONDS.toNanos(10), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(what + ": interrupted"); // the tag stays taken: its request is still in flight
        }
        if (!done) {
            throw new IOException(what + ": no completion"); // ditto
        }
        int result = results[tag];
        vectors[tag].clear();
        free.add(tag);
        if (result < 0) {
            throw new IOException(what + " failed: " + errnoName(-result) + " (" + result + ")");
        }
        return result;
    }

    static String errnoName(int errno) {
        return switch (errno) {
            case NbdProtocol.EPERM -> "EPERM";
            case NbdProtocol.EIO -> "EIO";
            case NbdProtocol.ENOMEM -> "ENOMEM";
            case NbdProtocol.EINVAL -> "EINVAL";
            case NbdProtocol.ENOSPC -> "ENOSPC";
            case NbdProtocol.EROFS -> "EROFS";
            case NbdProtocol.EOVERFLOW -> "EOVERFLOW";
            case NbdProtocol.EOPNOTSUPP -> "EOPNOTSUPP";
            case NbdProtocol.ENOTCONN -> "ENOTCONN: not connected to the NBD server";
            default -> "errno " + errno;
        };
    }

    @Override
    public String name() {
        return "nbd-sync";
    }

    @Override
    public int capacity() {
        return TAGS;
    }

    @Override
    public void submit() {
    }

    @Override
    public int reap(Completions sink) {
        return 0;
    }

    @Override
    public void await(long nanos) {
    }

    @Override
    public void wake() {
    }

    @Override
    public void complete(int tag, int result) {
        results[tag] = result;
        latches[tag].countDown();
    }

    @Override
    public void close() {
    }
}
