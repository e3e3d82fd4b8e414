package io.javadevices.nvme.backend;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.locks.LockSupport;

/**
 * The {@link IoEngine} where io_uring is not available, and for backends without an asynchronous path of their
 * own: a bounded pool of threads per queue worker ({@code io-threads}, default 4) that runs a backend's
 * synchronous methods ({@link #syncIo}), so a queue's commands are in flight together up to that many at once. A
 * durable write is the backend's one durable write ({@link BlockBackend#writeDurable}: one RWF_DSYNC write for a
 * file), as on the synchronous path, so both count and fail it the same way.
 *
 * <p>Nothing is shared with another queue: operations prepared by the worker wait in a worker-only list until
 * {@link #submit}, which hands them to this pool's threads through a lock-free queue ({@link TagQueue}) and wakes
 * as many idle threads as there are new operations; completions come back through a {@link CompletionInbox} and
 * wake the worker if it waits. Threads start with the first submission, so a queue that is never used costs none.
 *
 * <p>Parking uses Dekker's pattern on both sides (store "waiting", full fence, re-check the queue): a
 * submission or completion is never missed by a thread about to sleep.
 */
public final class ThreadPoolEngine implements IoEngine {
    private static final System.Logger LOG = System.getLogger(ThreadPoolEngine.class.getName());
    private static final VarHandle IDLE = MethodHandles.arrayElementVarHandle(boolean[].class);
    private static final int READ = 1, WRITE = 2, FLUSH = 3, ZEROES = 4, DEALLOCATE = 5;
    /** Linux errnos. */
    static final int EIO = 5, EFAULT = 14;

    private final String name;
    private final int capacity;
    private final Thread[] threads;
    private final boolean[] idle; // through IDLE, volatile
    private final TagQueue work;
    private final CompletionInbox inbox;
    /** Where completions go instead of this engine's own inbox ({@link #forwardingTo}), or null. */
    private final IoEngine completeInto;
    // Per tag, written by the worker before the tag is queued, read by the thread that takes it.
    private final int[] op;
    private final BlockBackend[] backend;
    private final long[] offset, length;
    private final IoVector[] data;
    private final boolean[] durable;
    // Worker-only: prepared, not yet submitted.
    private final int[] prepared;
    private int preparedCount;
    private boolean started;
    private volatile boolean closed;
    private volatile boolean workerWaiting;
    private Thread worker;
    /** Runs after each completion is queued ({@link #onCompletion}): wakes the queue worker's thread. */
    private Runnable completionSignal = () -> { };

    /** @param threads 1..64; {@code name} names the threads ({@code name-ioN}) */
    public ThreadPoolEngine(String name, int capacity, int threads) {
        this(name, capacity, threads, null);
    }

    /**
     * A pool whose completions go to {@code into} ({@link IoEngine#complete}), which its worker reaps: the thread
     * of an io_uring queue for the operations the ring cannot take ({@link UringEngine#blockingCalls}). The tags
     * are {@code into}'s.
     */
    static ThreadPoolEngine forwardingTo(IoEngine into, String name, int threads) {
        return new ThreadPoolEngine(name, into.capacity(), threads, into);
    }

    private ThreadPoolEngine(String name, int capacity, int threads, IoEngine completeInto) {
        if (threads < 1 || threads > 64 || capacity < 1) {
            throw new IllegalArgumentException("io-threads must be 1..64: " + threads);
        }
        this.name = name;
        this.capacity = capacity;
        this.threads = new Thread[threads];
        this.idle = new boolean[threads];
        this.work = new TagQueue(capacity);
        this.inbox = new CompletionInbox(capacity);
        this.completeInto = completeInto;
        this.op = new int[capacity];
        this.backend = new BlockBackend[capacity];
        this.offset = new long[capacity];
        this.length = new long[capacity];
        this.data = new IoVector[capacity];
        this.durable = new boolean[capacity];
        this.prepared = new int[capacity];
    }

    @Override
    public String name() {
        return "threads";
    }

    /** Threads per queue. */
    public int threads() {
        return threads.length;
    }

    @Override
    public int capacity() {
        return capacity;
    }

    /**
     * The asynchronous path of {@code b} on this pool: each operation runs {@code b}'s synchronous method on a
     * pool thread. One object per (worker, backend); allocation-free per operation.
     */
    public AsyncIo syncIo(BlockBackend b) {
        return new AsyncIo() {
            @Override
            public void read(int tag, long at, IoVector v) {
                prepare(tag, READ, b, at, v.bytes(), v, false);
            }

            @Override
            public void write(int tag, long at, IoVector v, boolean sync) {
                prepare(tag, WRITE, b, at, v.bytes(), v, sync);
            }

            @Override
            public void flush(int tag) {
                prepare(tag, FLUSH, b, 0, 0, null, false);
            }

            @Override
            public void writeZeroes(int tag, long at, long bytes, boolean sync) {
                prepare(tag, ZEROES, b, at, bytes, null, sync);
            }

            @Override
            public void deallocate(int tag, long at, long bytes) {
                prepare(tag, DEALLOCATE, b, at, bytes, null, false);
            }
        };
    }

    private void prepare(int tag, int kind, BlockBackend b, long at, long bytes, IoVector v, boolean sync) {
        op[tag] = kind;
        backend[tag] = b;
        offset[tag] = at;
        length[tag] = bytes;
        data[tag] = v;
        durable[tag] = sync;
        prepared[preparedCount++] = tag;
    }

    @Override
    public void submit() {
        int n = preparedCount;
        if (n == 0) {
            return;
        }
        if (!started) {
            start();
        }
        for (int i = 0; i < n; i++) {
            work.offer(prepared[i]); // release: the tag's fields above are visible to the thread that takes it
        }
        preparedCount = 0;
        VarHandle.fullFence(); // Dekker with park(): queue stored, then idle flags loaded
        for (int i = 0; i < threads.length && n > 0; i++) {
            if ((boolean) IDLE.getVolatile(idle, i)) {
                IDLE.setVolatile(idle, i, false);
                LockSupport.unpark(threads[i]);
                n--;
            }
        }
    }

    private void start() {
        started = true;
        for (int i = 0; i < threads.length; i++) {
            int index = i;
            threads[i] = Thread.ofPlatform().daemon().name(name + "-io" + i).unstarted(() -> runThread(index));
        }
        for (Thread t : threads) {
            t.start();
        }
    }

    private void runThread(int index) {
        while (!closed) {
            int tag = work.poll();
            if (tag >= 0) {
                complete(tag, execute(tag));
                continue;
            }
            IDLE.setVolatile(idle, index, true); // Dekker with submit(): idle stored, fence, then the queue loaded
            VarHandle.fullFence();
            if (!work.nonEmpty() && !closed) {
                LockSupport.park(this);
            }
            IDLE.setVolatile(idle, index, false);
        }
    }

    /** Runs one operation with the backend's synchronous methods; the result as {@link IoEngine} defines it. */
    private int execute(int tag) {
        BlockBackend b = backend[tag];
        IoVector v = data[tag];
        long at = offset[tag];
        try {
            switch (op[tag]) {
                case READ -> {
                    long position = at;
                    for (int i = 0; i < v.count(); i++) {
                        MemorySegment s = v.segment(i);
                        b.read(position, s);
                        position += s.byteSize();
                    }
                    return (int) Math.min(Integer.MAX_VALUE, v.bytes());
                }
                case WRITE -> {
                    if (durable[tag]) {
                        b.writeDurable(at, v); // a file: one RWF_DSYNC write; the default: write, then sync
                    } else {
                        DurableWrites.writePlainly(b, at, v, 0);
                    }
                    return (int) Math.min(Integer.MAX_VALUE, v.bytes());
                }
                case FLUSH -> b.flush();
                case ZEROES -> {
                    b.writeZeroes(at, length[tag]);
                    if (durable[tag]) {
                        b.sync(at, length[tag]);
                    }
                }
                case DEALLOCATE -> b.deallocate(at, length[tag]);
                default -> {
                    return -EIO;
                }
            }
            return 0;
        } catch (IOException e) {
            return -EIO;
        } catch (IllegalStateException | IndexOutOfBoundsException | InternalError e) {
            // Guest memory went away under the copy (a closed arena, a truncated mapping): not the media's fault.
            return -EFAULT;
        } catch (RuntimeException e) {
            return -EIO;
        } finally {
            backend[tag] = null;
            data[tag] = null;
        }
    }

    @Override
    public int reap(Completions sink) {
        return inbox.drain(sink);
    }

    @Override
    public void await(long nanos) {
        worker = Thread.currentThread();
        workerWaiting = true; // volatile store, then the inbox load: Dekker with complete()
        VarHandle.fullFence();
        if (!inbox.nonEmpty()) {
            LockSupport.parkNanos(this, nanos);
        }
        workerWaiting = false;
    }

    @Override
    public void wake() {
        if (workerWaiting) {
            Thread w = worker;
            if (w != null) {
                LockSupport.unpark(w);
            }
        }
    }

    @Override
    public void complete(int tag, int result) {
        if (completeInto != null) {
            completeInto.complete(tag, result);
            return;
        }
        inbox.offer(tag, result);
        VarHandle.fullFence(); // Dekker with await(): completion stored, then "waiting" loaded
        wake();
        completionSignal.run();
    }

    @Override
    public void onCompletion(Runnable signal) {
        completionSignal = signal;
    }

    @Override
    public boolean hasCompletions() {
        return inbox.nonEmpty();
    }

    @Override
    public boolean signalsCompletions() {
        return true;
    }

    @Override
    public void close() {
        closed = true;
        for (Thread t : threads) {
            if (t != null) {
                LockSupport.unpark(t);
            }
        }
        LOG.log(System.Logger.Level.DEBUG, "{0}: I/O threads stopped", name);
    }
}
