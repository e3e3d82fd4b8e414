package io.javadevices.nvme;

import io.javadevices.nvme.backend.AsyncIo;
import io.javadevices.nvme.backend.BlockBackend;
import io.javadevices.nvme.backend.IoEngine;
import io.javadevices.nvme.backend.ThreadPoolEngine;

import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * A backend whose asynchronous path is its synchronous methods on the queue's thread pool
 * ({@link ThreadPoolEngine#syncIo}), as a file backend without io_uring has it: the real engine with any backend.
 * {@link #delayReadsAt} makes reads at one offset wait until released, to force completions out of order.
 */
class PooledBackend implements BlockBackend {
    private final BlockBackend inner;
    private volatile long slowOffset = -1;
    private final java.util.concurrent.CountDownLatch slow = new java.util.concurrent.CountDownLatch(1);

    PooledBackend(BlockBackend inner) {
        this.inner = inner;
    }

    /** Reads at {@code offset} wait for {@link #releaseSlowReads}. */
    PooledBackend delayReadsAt(long offset) {
        slowOffset = offset;
        return this;
    }

    void releaseSlowReads() {
        slow.countDown();
    }

    @Override
    public AsyncIo openAsync(IoEngine engine) {
        return engine instanceof ThreadPoolEngine pool ? pool.syncIo(this) : null;
    }

    @Override
    public void read(long offset, MemorySegment dst) throws IOException {
        if (offset == slowOffset) {
            try {
                slow.await();
            } catch (InterruptedException e) {
                throw new IOException(e);
            }
        }
        inner.read(offset, dst);
    }

    @Override public long size() { return inner.size(); }
    @Override public void write(long offset, MemorySegment src) throws IOException { inner.write(offset, src); }
    @Override public void flush() throws IOException { inner.flush(); }
    @Override public void sync(long offset, long length) throws IOException { inner.sync(offset, length); }
    @Override public boolean volatileWriteCache() { return inner.volatileWriteCache(); }
    @Override public long syncs() { return inner.syncs(); }
    @Override public void writeZeroes(long offset, long length) throws IOException { inner.writeZeroes(offset, length); }
    @Override public void deallocate(long offset, long length) throws IOException { inner.deallocate(offset, length); }
    @Override public boolean deallocatedReadsZero() { return inner.deallocatedReadsZero(); }
    @Override public String describe() { return "pooled:" + inner.describe(); }
    @Override public void close() { inner.close(); }
}
