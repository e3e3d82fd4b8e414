package io.javadevices.nvme.backend;

import java.lang.foreign.MemorySegment;

/** Discards writes; reads give zeroes (the guest buffer is filled). Used for benchmarks. */
public final class NullBackend implements BlockBackend {
    private volatile long size;

    public NullBackend(long size) {
        this.size = size;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public void read(long offset, MemorySegment dst) {
        dst.fill((byte) 0);
    }

    @Override
    public void write(long offset, MemorySegment src) {
    }

    @Override
    public void flush() {
    }

    @Override
    public void writeZeroes(long offset, long length) {
    }

    @Override
    public void deallocate(long offset, long length) {
    }

    @Override
    public boolean readsOnlyZeroes() {
        return true;
    }

    /** Memory speed: runs on the polling thread, never offloaded. */
    @Override
    public boolean mayBlock() {
        return false;
    }

    @Override
    public boolean deallocatedReadsZero() {
        return true;
    }

    @Override
    public String notResizable() {
        return null;
    }

    @Override
    public void resize(long newSize) {
        size = newSize;
    }

    @Override
    public String describe() {
        return "null:" + size;
    }

    @Override
    public void close() {
    }
}
