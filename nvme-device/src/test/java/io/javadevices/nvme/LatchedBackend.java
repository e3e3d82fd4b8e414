package io.javadevices.nvme;

import io.javadevices.nvme.backend.AsyncIo;
import io.javadevices.nvme.backend.BlockBackend;
import io.javadevices.nvme.backend.IoEngine;
import io.javadevices.nvme.backend.ThreadPoolEngine;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Storage that may block (as a file or NBD server, {@link BlockBackend#mayBlock}) with the thread-pool engine's
 * asynchronous path: while {@link #arm}ed, every blocking read, flush and sync waits on one latch until
 * {@link #release} (an {@code fdatasync} on busy storage, a slow NBD server), and records the thread that made it.
 */
final class LatchedBackend implements BlockBackend {
    private final BlockBackend inner;
    private volatile CountDownLatch gate;
    private final CountDownLatch entered = new CountDownLatch(1);
    final List<String> blockedThreads = new CopyOnWriteArrayList<>();

    LatchedBackend(BlockBackend inner) {
        this.inner = inner;
    }

    /** From now on every read, flush and sync waits until {@link #release}. */
    void arm() {
        gate = new CountDownLatch(1);
    }

    void release() {
        CountDownLatch g = gate;
        gate = null;
        if (g != null) {
            g.countDown();
        }
    }

    /** Waits until a call is held at the latch; returns the name of the thread that made it. */
    String awaitEntered() throws InterruptedException {
        if (!entered.await(5, TimeUnit.SECONDS)) {
            throw new AssertionError("no call reached the latched backend");
        }
        return blockedThreads.getFirst();
    }

    private void hold() {
        CountDownLatch g = gate;
        if (g == null) {
            return;
        }
        blockedThreads.add(Thread.currentThread().getName());
        entered.countDown();
        try {
            g.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public AsyncIo openAsync(IoEngine engine) {
        return engine instanceof ThreadPoolEngine pool ? pool.syncIo(this) : null;
    }

    @Override
    public void read(long offset, MemorySegment dst) throws IOException {
        hold();
        inner.read(offset, dst);
    }

    @Override
    public void flush() throws IOException {
        hold();
        inner.flush();
    }

    @Override
    public void sync(long offset, long length) throws IOException {
        hold();
        inner.sync(offset, length);
    }

    @Override public long size() { return inner.size(); }
    @Override public void write(long offset, MemorySegment src) throws IOException { inner.write(offset, src); }
    @Override public void writeZeroes(long offset, long length) throws IOException { inner.writeZeroes(offset, length); }
    @Override public void deallocate(long offset, long length) throws IOException { inner.deallocate(offset, length); }
    @Override public boolean deallocatedReadsZero() { return inner.deallocatedReadsZero(); }
    @Override public String describe() { return "latched:" + inner.describe(); }

    @Override
    public void close() {
        release();
        inner.close();
    }
}
