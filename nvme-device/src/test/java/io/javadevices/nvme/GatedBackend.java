package io.javadevices.nvme;

import io.javadevices.nvme.backend.BlockBackend;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * A backend that, once armed, holds the next read, flush or Write Zeroes (a Format's user data erase) until
 * the test releases it: a worker "stuck in a long command" on demand, without sleeping. The held read fills
 * its buffer only after the release (as a read blocked in the kernel would). Write Zeroes can also be made to
 * fail.
 */
final class GatedBackend implements BlockBackend {
    private final BlockBackend inner;
    private volatile boolean holdRead, holdFlush, holdZeroes, failZeroes;
    private final CountDownLatch entered = new CountDownLatch(1);
    private final CountDownLatch release = new CountDownLatch(1);

    GatedBackend(BlockBackend inner) {
        this.inner = inner;
    }

    /** The next read (true) or flush (false) blocks until {@link #release}. */
    GatedBackend arm(boolean read) {
        if (read) {
            holdRead = true;
        } else {
            holdFlush = true;
        }
        return this;
    }

    /** The next Write Zeroes blocks until {@link #release}. */
    GatedBackend armZeroes() {
        holdZeroes = true;
        return this;
    }

    /** While {@code fail}, Write Zeroes throws an IOException (an erase that fails in the backend). */
    void failZeroes(boolean fail) {
        failZeroes = fail;
    }

    /** Waits until a worker is inside the held call. */
    void awaitEntered() throws InterruptedException {
        if (!entered.await(5, TimeUnit.SECONDS)) {
            throw new AssertionError("no worker entered the gated backend call");
        }
    }

    void release() {
        release.countDown();
    }

    private void hold() {
        entered.countDown();
        try {
            release.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public long size() {
        return inner.size();
    }

    @Override
    public void read(long offset, MemorySegment dst) throws IOException {
        if (holdRead) {
            holdRead = false;
            hold();
        }
        inner.read(offset, dst);
    }

    @Override
    public void write(long offset, MemorySegment src) throws IOException {
        inner.write(offset, src);
    }

    @Override
    public void flush() throws IOException {
        if (holdFlush) {
            holdFlush = false;
            hold();
        }
        inner.flush();
    }

    @Override
    public void writeZeroes(long offset, long length) throws IOException {
        if (holdZeroes) {
            holdZeroes = false;
            hold();
        }
        if (failZeroes) {
            throw new IOException("injected: Write Zeroes fails");
        }
        inner.writeZeroes(offset, length);
    }

    @Override
    public void deallocate(long offset, long length) throws IOException {
        inner.deallocate(offset, length);
    }

    @Override
    public boolean deallocatedReadsZero() {
        return inner.deallocatedReadsZero();
    }

    @Override
    public String describe() {
        return "gated " + inner.describe();
    }

    @Override
    public void close() {
        release();
        inner.close();
    }
}
