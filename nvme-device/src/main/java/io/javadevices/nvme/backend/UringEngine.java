package io.javadevices.nvme.backend;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicInteger;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * An {@link IoEngine} on one io_uring per queue worker ({@link UringRing}): the worker prepares SQEs for its
 * commands, {@link #submit} hands them all to the kernel in one {@code io_uring_enter}, {@link #reap} reads the
 * CQ ring in user space (no syscall) and {@link #await} blocks in {@code io_uring_enter(GETEVENTS)} with a
 * timeout. Completions from other threads ({@link #complete}: an NBD reader, the synchronous fallback of
 * {@link UringFileIo}) go through a {@link CompletionInbox} drained by the same {@link #reap}.
 *
 * <p><b>Wake-ups.</b> A read of 8 bytes from an eventfd is always armed on the ring (user_data {@link #WAKE},
 * outside the tag space) and re-armed each time it completes, so {@link #wake} is one {@code write(2)} to that
 * eventfd and the waiting {@code io_uring_enter} returns with its CQE. {@code wake} only writes while the worker
 * waits: the worker announces {@code waiting} and then checks {@code wakePending}; a waker sets
 * {@code wakePending} and then checks {@code waiting} (Dekker's pattern, with sequentially consistent volatile
 * accesses), so at least one of them sees the other and no wake-up is lost, and a doorbell rung while the worker
 * is busy costs one volatile store and load. One waker at a time moves {@code waiting} to {@code WRITING} and
 * writes; the worker does not leave {@code await} (nor reach {@link #close}) before that write is done.
 *
 * <p><b>Multi-step operations.</b> A {@link Step} registered with an SQE sees its CQE first and either finishes
 * the operation (its result goes to the sink) or prepares the next SQE for the same tag (the rest of a short
 * transfer, the fsync after a durable zeroing) and answers {@link #CONTINUES}.
 *
 * <p><b>Sizes.</b> The SQ has a slot per tag plus the wake read (clamped by the kernel); when it is full,
 * preparing submits and continues. The CQ is twice the SQ (the kernel's default) and each tag has at most one
 * SQE in flight, so it cannot overflow; if it ever did, {@code IORING_FEAT_NODROP} (required) keeps the extra
 * completions, which {@link #reap} flushes in.
 */
public final class UringEngine implements IoEngine {
    /** Sees the CQE of an SQE it prepared; returns the operation's result, or {@link #CONTINUES}. */
    interface Step {
        int completed(int tag, int phase, int result);
    }

    /** A {@link Step}'s answer: the operation goes on with another SQE for the same tag. */
    static final int CONTINUES = Integer.MIN_VALUE;
    /** user_data of the eventfd read; tags are below 2^16 and phases below 2^8, so no SQE of a tag has it. */
    private static final long WAKE = -1L;
    private static final int MAX_SQ_ENTRIES = 4096;
    private static final int IDLE = 0, WAITING = 1, WRITING = 2;
    /** Eight bytes holding 1: what {@link #wake} writes to the eventfd (read-only, shared by all engines). */
    private static final MemorySegment ONE = one();
    private static final System.Logger LOG = System.getLogger(UringEngine.class.getName());

    private final UringRing ring;
    private final int capacity;
    private final String worker;
    /** Runs after a completion from another thread is queued ({@link #onCompletion}): wakes the worker's thread. */
    private Runnable completionSignal = () -> { };
    private final Step[] steps;
    private final CompletionInbox inbox;
    /** The thread for the operations the ring cannot take ({@link #blockingCalls}); null until the first one. */
    private ThreadPoolEngine blocking;
    private final int eventFd;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment wakeBuffer = arena.allocate(8, 8);
    /** {@link #IDLE}, {@link #WAITING} (the worker is in await) or {@link #WRITING} (one waker writes the eventfd). */
    private final AtomicInteger waiting = new AtomicInteger();
    private final AtomicInteger wakePending = new AtomicInteger();
    private boolean wakeArmed;
    private int wakeFailures;
    private int droppedSeen;
    private long overflowFlushes;
    private boolean closed;
    private boolean eventfdRegistered;

    private UringEngine(UringRing ring, int capacity, String worker, int eventFd) {
        this.ring = ring;
        this.capacity = capacity;
        this.worker = worker;
        this.steps = new Step[capacity];
        this.inbox = new CompletionInbox(capacity);
        this.eventFd = eventFd;
        // Prepared, not submitted: the worker's first submit/await arms it, so the read belongs to the worker's
        // task (io_uring cancels a task's requests when that task exits, and open() may run on another thread).
        armWake();
    }

    /**
     * One ring for {@code worker}'s {@code capacity} tags.
     *
     * @throws UringUnavailableException with the reason (ENOSYS, EPERM under seccomp or
     *     {@code kernel.io_uring_disabled}, ENOMEM from RLIMIT_MEMLOCK on old kernels, a kernel older than 5.11)
     */
    public static UringEngine open(int capacity, Thread worker) {
        return open(capacity, worker.getName());
    }

    /** {@link #open(int, Thread)} for the queue worker called {@code worker}. */
    public static UringEngine open(int capacity, String worker) {
        int entries = Integer.highestOneBit(Math.min(Math.max(capacity + 1, 8), MAX_SQ_ENTRIES) * 2 - 1);
        return open(capacity, worker, entries, UringRing.IORING_SETUP_CLAMP);
    }

    /** {@link #open(int, Thread)} with explicit ring parameters (tests: an invalid value gets the failure path). */
    static UringEngine open(int capacity, Thread worker, int sqEntries, int setupFlags) {
        return open(capacity, worker.getName(), sqEntries, setupFlags);
    }

    private static UringEngine open(int capacity, String worker, int sqEntries, int setupFlags) {
        if (capacity <= 0 || capacity > 1 << 16) {
            throw new IllegalArgumentException("io_uring engine capacity " + capacity + " outside [1, 65536]");
        }
        if (!System.getProperty("os.name", "").startsWith("Linux")) {
            throw new UringUnavailableException("io_uring needs Linux (this is " + System.getProperty("os.name") + ")");
        }
        UringRing ring = null;
        int fd;
        try {
            ring = UringRing.setup(sqEntries, setupFlags);
            try (Arena a = Arena.ofConfined()) {
                fd = UringSyscalls.eventfd(UringSyscalls.callState(a));
            }
        } catch (IllegalCallerException | ExceptionInInitializerError | NoClassDefFoundError e) {
            // Native access denied (--illegal-native-access=deny without --enable-native-access), or no such libc symbol.
            if (ring != null) {
                ring.close();
            }
            throw new UringUnavailableException("io_uring through the FFM API is not usable here: " + e);
        }
        if (fd < 0) {
            ring.close();
            throw new UringUnavailableException("eventfd for the io_uring wake-up failed: " + UringSyscalls.name(-fd));
        }
        return new UringEngine(ring, capacity, worker, fd);
    }

    private static MemorySegment one() {
        MemorySegment one = Arena.global().allocate(8, 8);
        one.set(JAVA_LONG, 0, 1L);
        return one;
    }

    @Override
    public String name() {
        return "io_uring";
    }

    @Override
    public int capacity() {
        return capacity;
    }

    /** Completions the kernel dropped for lack of memory (the CQ's overflow counter): 0 unless something is badly wrong. */
    public int droppedCompletions() {
        return ring.dropped();
    }

    /** Times {@link #reap} found completions the kernel had kept aside for a full CQ. */
    long overflowFlushes() {
        return overflowFlushes;
    }

    /** The worker this engine belongs to, for messages. */
    private String workerName() {
        return worker == null ? "a queue worker" : worker;
    }

    /**
     * Prepares one SQE of {@code tag}, its CQE going to {@code step} (null: the CQE's result is the operation's
     * result). When the SQ is full, submits what is there and continues; false only if the kernel does not take
     * SQEs at all right now (the caller then completes the operation with an error).
     */
    boolean prepare(Step step, int tag, int phase, int opcode, int sqeFlags, int fd, long offset, long address,
                    int length, int opFlags) {
        long userData = ((long) phase << 32) | tag;
        steps[tag] = step;
        if (ring.prepare(opcode, sqeFlags, fd, offset, address, length, opFlags, userData)) {
            return true;
        }
        ring.submit();
        return ring.prepare(opcode, sqeFlags, fd, offset, address, length, opFlags, userData);
    }

    @Override
    public void submit() {
        ring.submit();
        if (blocking != null) {
            blocking.submit();
        }
    }

    /**
     * The operations of this queue that the ring cannot take and that call a backend's blocking methods instead
     * ({@link UringFileIo}'s synchronous path: unaligned O_DIRECT pieces, heap memory, block device zeroing and
     * discard): run by one thread of this queue's own, started by the first of them, never on the worker's thread,
     * which a shared polling thread is (a guest's unaligned reads or a long {@code BLKZEROOUT} would stall every
     * other queue on it). They complete into this engine ({@link #complete}); {@link #submit} hands them over.
     * Worker thread.
     */
    ThreadPoolEngine blockingCalls() {
        ThreadPoolEngine b = blocking;
        if (b == null) {
            b = blocking = ThreadPoolEngine.forwardingTo(this, workerName() + "-blocking", 1);
        }
        return b;
    }

    @Override
    public int reap(Completions sink) {
        int n = 0;
        while (true) {
            int head = ring.cqHead();
            int tail = ring.cqTail();
            if (head == tail) {
                if (!ring.overflowPending()) {
                    break;
                }
                noteDropped();
                overflowFlushes++;
                ring.flushOverflow();
                if (!ring.cqReady()) {
                    break;
                }
                continue;
            }
            while (head != tail) {
                long userData = ring.cqeUserData(head);
                int result = ring.cqeResult(head);
                head++;
                ring.cqAdvance(head); // the CQE is copied out: its slot is the kernel's again
                if (userData == WAKE) {
                    wakeCompleted(result);
                    continue;
                }
                int tag = (int) userData;
                Step step = steps[tag];
                int outcome = step == null ? result : step.completed(tag, (int) (userData >>> 32), result);
                if (outcome != CONTINUES) {
                    steps[tag] = null;
                    sink.completed(tag, outcome);
                    n++;
                }
            }
        }
        n += inbox.drain(sink);
        if (ring.unsubmitted() > 0) {
            ring.submit(); // continuations prepared by steps: do not let them wait for the worker's next batch
        }
        if (blocking != null) {
            blocking.submit(); // a step's continuation on the blocking thread (EOPNOTSUPP), likewise
        }
        return n;
    }

    private void wakeCompleted(int result) {
        wakeArmed = false;
        if (result < 0 && result != -UringSyscalls.ECANCELED && result != -UringSyscalls.EINTR) {
            // A read of an eventfd does not fail; if it keeps failing, stop re-arming (awaits still time out).
            if (++wakeFailures == 16) {
                LOG.log(System.Logger.Level.WARNING, "io_uring wake-up read keeps failing (" + UringSyscalls.name(-result)
                        + "); waits on " + workerName() + " now end only by completion or timeout");
            }
            if (wakeFailures >= 16) {
                return;
            }
        }
        armWake();
    }

    private void armWake() {
        wakeArmed = ring.prepare(UringRing.IORING_OP_READ, 0, eventFd, 0L, wakeBuffer.address(), 8, 0, WAKE);
    }

    /** With NODROP the kernel keeps what did not fit; the overflow counter only moves if it could not. */
    private void noteDropped() {
        int dropped = ring.dropped();
        if (dropped != droppedSeen) {
            droppedSeen = dropped;
            LOG.log(System.Logger.Level.ERROR, "io_uring of " + workerName() + " dropped completions (" + dropped
                    + " so far): their commands will time out");
        }
    }

    @Override
    public void await(long nanos) {
        if (nanos <= 0) {
            return;
        }
        if (!wakeArmed && wakeFailures < 16) {
            armWake();
        }
        waiting.set(WAITING);
        if (wakePending.get() == 0 && !ring.cqReady() && !inbox.nonEmpty()) {
            ring.submitAndWait(nanos); // -ETIME, -EINTR or a CQE: all mean "look again"
        }
        if (!waiting.compareAndSet(WAITING, IDLE)) {
            // A waker is writing the eventfd: let it finish, so that no write can reach the fd after close().
            while (waiting.get() == WRITING) {
                Thread.onSpinWait();
            }
        }
        wakePending.getAndSet(0); // a read: the waker's doorbell write happens-before what the worker does next
    }

    /** True while the worker is in (or entering) {@link #await}: tests wait for it before waking. */
    boolean isWaiting() {
        return waiting.get() == WAITING;
    }

    @Override
    public void wake() {
        wakePending.set(1);
        if (waiting.get() == WAITING && waiting.compareAndSet(WAITING, WRITING)) {
            UringSyscalls.write(eventFd, ONE.address(), 8);
            waiting.set(IDLE);
        }
    }

    @Override
    public void complete(int tag, int result) {
        inbox.offer(tag, result);
        wake();
        completionSignal.run();
    }

    @Override
    public void completeQuietly(int tag, int result) {
        inbox.offer(tag, result); // visible to hasCompletions at once: a worker about to sleep sees it
    }

    @Override
    public void signalCompleted() {
        wake();
        completionSignal.run();
    }

    @Override
    public void onCompletion(Runnable signal) {
        completionSignal = signal;
    }

    @Override
    public boolean hasCompletions() {
        return ring.cqReady() || ring.overflowPending() || inbox.nonEmpty();
    }

    /**
     * The kernel's CQEs wake only a thread waiting in {@link #await} until {@link #signalEventfd} registered its
     * thread's eventfd; a worker on a shared pool thread never waits there (it would block the thread's other
     * queues), so without it the worker looks at the CQ ring periodically while operations are in flight.
     */
    @Override
    public boolean signalsCompletions() {
        return eventfdRegistered;
    }

    /**
     * The pool thread that runs this queue sleeps on {@code eventFd} (a {@code ppoll}): the kernel signals it for
     * every CQE of this ring from now on ({@code IORING_REGISTER_EVENTFD}), so a completion wakes the thread even
     * while it sleeps for other queues too. Worker thread, once; a refusal (an old kernel) leaves the periodic look.
     */
    @Override
    public boolean signalEventfd(int eventFd) {
        if (eventFd < 0 || eventfdRegistered) {
            return eventfdRegistered;
        }
        int rc = ring.registerEventfd(eventFd);
        if (rc < 0) {
            LOG.log(System.Logger.Level.WARNING, "io_uring of " + workerName() + ": IORING_REGISTER_EVENTFD refused ("
                    + UringSyscalls.name(-rc) + "); its completions are looked for every few microseconds");
            return false;
        }
        eventfdRegistered = true;
        return true;
    }

    /** What {@link #close} runs after the ring is gone: release what was opened for this ring only. */
    private final java.util.List<Runnable> closeActions = new java.util.ArrayList<>();

    /**
     * Runs {@code action} when this engine closes, i.e. once its worker ended and nothing is in flight (a file
     * backend closes the descriptor it opened for this ring). Worker thread, like {@link #close}.
     */
    void onClose(Runnable action) {
        closeActions.add(action);
    }

    /** Closes the ring (the kernel cancels the armed wake read) and the eventfd. Worker thread, nothing in flight. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (blocking != null) {
            blocking.close(); // nothing in flight: its thread is idle and ends
        }
        ring.close();
        UringSyscalls.close(eventFd);
        arena.close();
        for (Runnable action : closeActions) {
            try {
                action.run();
            } catch (RuntimeException e) {
                System.getLogger(UringEngine.class.getName()).log(System.Logger.Level.WARNING,
                        "releasing what was opened for an io_uring queue failed: " + e);
            }
        }
        closeActions.clear();
    }
}
