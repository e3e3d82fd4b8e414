package io.javadevices.nvme;

import io.javadevices.nvme.backend.AsyncIo;
import io.javadevices.nvme.backend.BlockBackend;
import io.javadevices.nvme.backend.IoEngine;
import io.javadevices.nvme.backend.IoVector;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A test backend with an asynchronous path that holds every operation until the test completes it, in the order
 * the test chooses, from the test's thread ({@link IoEngine#complete}): out-of-order completion, deep queues,
 * backpressure, errors and resets with operations in flight, all without sleeping. Data lives in the wrapped
 * backend; a held read fills its buffers only when completed (as a read still in the kernel would).
 */
final class HeldBackend implements BlockBackend {
    /** One held operation as the worker prepared it. */
    record Op(IoEngine engine, int tag, String kind, long offset, long length, IoVector data, boolean durable) {
    }

    private final BlockBackend inner;
    private final boolean readOnly;
    private final List<Op> held = new ArrayList<>(); // guarded by this
    private final AtomicInteger inFlight = new AtomicInteger();
    private final AtomicInteger maxInFlight = new AtomicInteger();
    private volatile boolean closed;
    private volatile boolean closedWithOperationsInFlight;
    private volatile int opens;

    HeldBackend(BlockBackend inner) {
        this(inner, false);
    }

    HeldBackend(BlockBackend inner, boolean readOnly) {
        this.inner = inner;
        this.readOnly = readOnly;
    }

    @Override
    public AsyncIo openAsync(IoEngine engine) {
        opens++;
        return new AsyncIo() {
            @Override
            public void read(int tag, long offset, IoVector data) {
                hold(new Op(engine, tag, "read", offset, data.bytes(), data, false));
            }

            @Override
            public void write(int tag, long offset, IoVector data, boolean durable) {
                hold(new Op(engine, tag, "write", offset, data.bytes(), data, durable));
            }

            @Override
            public void flush(int tag) {
                hold(new Op(engine, tag, "flush", 0, 0, null, false));
            }

            @Override
            public void writeZeroes(int tag, long offset, long length, boolean durable) {
                hold(new Op(engine, tag, "zeroes", offset, length, null, durable));
            }

            @Override
            public void deallocate(int tag, long offset, long length) {
                hold(new Op(engine, tag, "deallocate", offset, length, null, false));
            }
        };
    }

    private synchronized void hold(Op op) {
        held.add(op);
        int n = inFlight.incrementAndGet();
        maxInFlight.accumulateAndGet(n, Math::max);
        notifyAll();
    }

    /** Waits until at least {@code n} operations are held; returns them in the order they were prepared. */
    synchronized List<Op> awaitHeld(int n) {
        long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        while (held.size() < n) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                throw new AssertionError("only " + held.size() + " of " + n + " operations reached the backend");
            }
            try {
                wait(Math.max(1, left / 1_000_000));
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
        }
        return List.copyOf(held);
    }

    synchronized List<Op> held() {
        return List.copyOf(held);
    }

    /** Performs {@code op} on the wrapped backend and reports it done. */
    void complete(Op op) {
        int result;
        try {
            result = perform(op);
        } catch (IOException e) {
            result = -5;
        }
        complete(op, result);
    }

    /** Reports {@code op} done with {@code result} (a negated errno fails it without touching the data). */
    void complete(Op op, int result) {
        synchronized (this) {
            if (!held.remove(op)) {
                throw new AssertionError("not held: " + op);
            }
        }
        inFlight.decrementAndGet();
        op.engine().complete(op.tag(), result);
    }

    private int perform(Op op) throws IOException {
        switch (op.kind()) {
            case "read", "write" -> {
                long at = op.offset();
                for (int i = 0; i < op.data().count(); i++) {
                    MemorySegment s = op.data().segment(i);
                    if (op.kind().equals("read")) {
                        inner.read(at, s);
                    } else {
                        inner.write(at, s);
                    }
                    at += s.byteSize();
                }
                return (int) op.length();
            }
            case "zeroes" -> inner.writeZeroes(op.offset(), op.length());
            case "deallocate" -> inner.deallocate(op.offset(), op.length());
            case "flush" -> inner.flush();
            default -> throw new AssertionError(op.kind());
        }
        return 0;
    }

    int maxInFlight() {
        return maxInFlight.get();
    }

    int inFlight() {
        return inFlight.get();
    }

    int opens() {
        return opens;
    }

    boolean closed() {
        return closed;
    }

    boolean closedWithOperationsInFlight() {
        return closedWithOperationsInFlight;
    }

    @Override public long size() { return inner.size(); }
    @Override public void read(long offset, MemorySegment dst) throws IOException { inner.read(offset, dst); }
    @Override public void write(long offset, MemorySegment src) throws IOException { inner.write(offset, src); }
    @Override public void flush() throws IOException { inner.flush(); }
    @Override public void writeZeroes(long offset, long length) throws IOException { inner.writeZeroes(offset, length); }
    @Override public void deallocate(long offset, long length) throws IOException { inner.deallocate(offset, length); }
    @Override public boolean deallocatedReadsZero() { return inner.deallocatedReadsZero(); }
    @Override public boolean readOnly() { return readOnly; }
    @Override public String describe() { return "held:" + inner.describe(); }

    @Override
    public void close() {
        if (inFlight.get() > 0) {
            closedWithOperationsInFlight = true;
        }
        closed = true;
        inner.close();
    }
}
