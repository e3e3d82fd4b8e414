package io.javadevices.nvme;

import io.javadevices.nvme.backend.BlockBackend;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A backend around a real one that records what the controller does to it: flushes (and can fail them), the close,
 * and whether the close came while a read was still inside; a read can be held until the test releases it (a
 * command in flight, without sleeping). Resizes go to the real backend.
 */
final class ProbeBackend implements BlockBackend {
    private final BlockBackend inner;
    final AtomicInteger flushes = new AtomicInteger();
    private final AtomicInteger inside = new AtomicInteger();
    volatile boolean failFlush, closed, closedUnderCommand, flushedBeforeClose;
    private volatile boolean holdNextRead;
    private final CountDownLatch entered = new CountDownLatch(1), release = new CountDownLatch(1);

    ProbeBackend(BlockBackend inner) {
        this.inner = inner;
    }

    /** The next read waits for {@link #release}. */
    void holdNextRead() {
        holdNextRead = true;
    }

    void awaitHeldRead() throws InterruptedException {
        if (!entered.await(5, TimeUnit.SECONDS)) {
            throw new AssertionError("no read entered the backend");
        }
    }

    void release() {
        release.countDown();
    }

    @Override public long size() { return inner.size(); }

    @Override
    public void read(long offset, MemorySegment dst) throws IOException {
        inside.incrementAndGet();
        try {
            if (holdNextRead) {
                holdNextRead = false;
                entered.countDown();
                if (!release.await(10, TimeUnit.SECONDS)) {
                    throw new IOException("never released");
                }
            }
            inner.read(offset, dst);
        } catch (InterruptedException e) {
            throw new IOException(e);
        } finally {
            inside.decrementAndGet();
        }
    }

    @Override public void write(long offset, MemorySegment src) throws IOException { inner.write(offset, src); }

    @Override
    public void flush() throws IOException {
        flushes.incrementAndGet();
        if (failFlush) {
            throw new IOException("injected flush failure");
        }
        inner.flush();
    }

    @Override public void writeZeroes(long offset, long length) throws IOException { inner.writeZeroes(offset, length); }
    @Override public void deallocate(long offset, long length) throws IOException { inner.deallocate(offset, length); }
    @Override public boolean deallocatedReadsZero() { return inner.deallocatedReadsZero(); }
    @Override public String notResizable() { return inner.notResizable(); }
    @Override public void resize(long newSize) throws IOException { inner.resize(newSize); }
    @Override public String describe() { return inner.describe(); }

    @Override
    public void close() {
        closedUnderCommand |= inside.get() > 0;
        flushedBeforeClose = flushes.get() > 0;
        closed = true;
        inner.close();
    }
}
