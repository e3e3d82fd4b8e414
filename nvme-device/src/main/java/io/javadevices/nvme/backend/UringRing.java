package io.javadevices.nvme.backend;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * One io_uring instance mapped into this process: the submission ring, the completion ring and the SQE array
 * shared with the kernel, laid out as {@code include/uapi/linux/io_uring.h} describes them ({@code struct
 * io_uring_params}, {@code io_sqring_offsets}, {@code io_cqring_offsets}, {@code io_uring_sqe},
 * {@code io_uring_cqe}, {@code io_uring_getevents_arg}). It does what liburing's {@code io_uring_queue_init},
 * {@code io_uring_get_sqe}, {@code io_uring_submit} and {@code io_uring_peek_cqe} do, and nothing more.
 *
 * <p><b>Memory order.</b> The kernel reads the SQ tail and writes the SQ head; it writes the CQ tail and reads
 * the CQ head. So the SQ tail and the CQ head are stored with release semantics (the SQEs, and our reads of
 * the CQEs, are ordered before them) and the SQ head and CQ tail are loaded with acquire semantics (the CQEs
 * the kernel wrote are visible after it), through {@code VarHandle}s on the mapped segments, as liburing's
 * {@code io_uring_smp_store_release} / {@code io_uring_smp_load_acquire} do.
 *
 * <p>Single-threaded: every method but {@link #close} runs on the owning worker's thread. Nothing allocates
 * after {@link #setup}.
 */
final class UringRing implements AutoCloseable {
    // struct io_uring_params: sq_entries, cq_entries, flags, sq_thread_cpu, sq_thread_idle, features, wq_fd,
    // resv[3], then struct io_sqring_offsets sq_off (40 bytes) at 40 and struct io_cqring_offsets cq_off at 80.
    static final int PARAMS_BYTES = 120;
    private static final int P_SQ_ENTRIES = 0, P_CQ_ENTRIES = 4, P_FLAGS = 8, P_FEATURES = 20, P_SQ_OFF = 40, P_CQ_OFF = 80;
    // io_sqring_offsets: head, tail, ring_mask, ring_entries, flags, dropped, array, resv1, user_addr
    private static final int SQ_HEAD = 0, SQ_TAIL = 4, SQ_FLAGS = 16, SQ_ARRAY = 24;
    // io_cqring_offsets: head, tail, ring_mask, ring_entries, overflow, cqes, flags, resv1, user_addr
    private static final int CQ_HEAD = 0, CQ_TAIL = 4, CQ_OVERFLOW = 16, CQ_CQES = 20;

    static final int SQE_BYTES = 64, CQE_BYTES = 16;
    // struct io_uring_sqe field offsets
    private static final int SQE_OPCODE = 0, SQE_FLAGS = 1, SQE_IOPRIO = 2, SQE_FD = 4, SQE_OFF = 8, SQE_ADDR = 16,
            SQE_LEN = 24, SQE_OP_FLAGS = 28, SQE_USER_DATA = 32, SQE_BUF_INDEX = 40, SQE_ADDR3 = 48, SQE_PAD = 56;

    static final long IORING_OFF_SQ_RING = 0L, IORING_OFF_CQ_RING = 0x8000000L, IORING_OFF_SQES = 0x10000000L;
    static final int IORING_SETUP_CLAMP = 1 << 4;
    static final int IORING_FEAT_SINGLE_MMAP = 1, IORING_FEAT_NODROP = 1 << 1, IORING_FEAT_EXT_ARG = 1 << 8;
    static final int IORING_ENTER_GETEVENTS = 1, IORING_ENTER_EXT_ARG = 1 << 3;
    static final int IORING_SQ_CQ_OVERFLOW = 1 << 1;

    static final int IORING_OP_READV = 1, IORING_OP_WRITEV = 2, IORING_OP_FSYNC = 3, IORING_OP_FALLOCATE = 17,
            IORING_OP_READ = 22, IORING_OP_WRITE = 23;
    static final int IORING_FSYNC_DATASYNC = 1;
    static final int RWF_DSYNC = 0x2;
    static final int FALLOC_FL_KEEP_SIZE = 0x01, FALLOC_FL_PUNCH_HOLE = 0x02, FALLOC_FL_ZERO_RANGE = 0x10;

    /** {@code struct io_uring_getevents_arg}: sigmask, sigmask_sz, pad (min_wait_usec since 6.12), ts. */
    private static final int GETEVENTS_ARG_BYTES = 24, ARG_TS = 16;

    private static final VarHandle INT = JAVA_INT.varHandle();

    final int fd;
    final int features;
    private final MemorySegment sqRing, cqRing, sqes;
    private final long sqRingBytes, cqRingBytes, sqesBytes;
    private final long sqHead, sqTail, sqFlags, cqHead, cqTail, cqOverflow, cqes;
    private final int sqMask, sqEntries, cqMask, cqEntries;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment state = UringSyscalls.callState(arena);
    /** A {@code struct __kernel_timespec} (tv_sec, tv_nsec) and the getevents arg pointing at it, reused per wait. */
    private final MemorySegment timespec = arena.allocate(16, 8);
    private final MemorySegment getEventsArg = arena.allocate(GETEVENTS_ARG_BYTES, 8);
    /** Our SQ tail (published to the kernel by {@link #publish}) and CQ head. */
    private int localSqTail, localCqHead;
    private boolean closed;

    private UringRing(int fd, MemorySegment params, int features) throws UringUnavailableException {
        this.fd = fd;
        this.features = features;
        this.sqEntries = params.get(JAVA_INT, P_SQ_ENTRIES);
        this.cqEntries = params.get(JAVA_INT, P_CQ_ENTRIES);
        int sqArray = params.get(JAVA_INT, P_SQ_OFF + SQ_ARRAY);
        int cqCqes = params.get(JAVA_INT, P_CQ_OFF + CQ_CQES);
        long sqBytes = sqArray + 4L * sqEntries;
        long cqBytes = cqCqes + (long) CQE_BYTES * cqEntries;
        boolean single = (features & IORING_FEAT_SINGLE_MMAP) != 0;
        if (single) {
            sqBytes = cqBytes = Math.max(sqBytes, cqBytes); // one mapping holds both rings (Linux 5.4+)
        }
        long sq = 0, cq = 0, sqe = 0;
        try {
            sq = map(fd, sqBytes, IORING_OFF_SQ_RING);
            cq = single ? sq : map(fd, cqBytes, IORING_OFF_CQ_RING);
            sqe = map(fd, (long) SQE_BYTES * sqEntries, IORING_OFF_SQES);
        } catch (UringUnavailableException e) {
            if (sq > 0) {
                UringSyscalls.unmap(sq, sqBytes);
            }
            if (cq > 0 && !single) {
                UringSyscalls.unmap(cq, cqBytes);
            }
            arena.close();
            throw e;
        }
        this.sqRingBytes = sqBytes;
        this.cqRingBytes = single ? 0 : cqBytes;
        this.sqesBytes = (long) SQE_BYTES * sqEntries;
        this.sqRing = MemorySegment.ofAddress(sq).reinterpret(sqBytes);
        this.cqRing = MemorySegment.ofAddress(cq).reinterpret(cqBytes);
        this.sqes = MemorySegment.ofAddress(sqe).reinterpret(sqesBytes);
        this.sqHead = params.get(JAVA_INT, P_SQ_OFF + SQ_HEAD);
        this.sqTail = params.get(JAVA_INT, P_SQ_OFF + SQ_TAIL);
        this.sqFlags = params.get(JAVA_INT, P_SQ_OFF + SQ_FLAGS);
        this.sqMask = sqRing.get(JAVA_INT, params.get(JAVA_INT, P_SQ_OFF + 8));
        this.cqHead = params.get(JAVA_INT, P_CQ_OFF + CQ_HEAD);
        this.cqTail = params.get(JAVA_INT, P_CQ_OFF + CQ_TAIL);
        this.cqOverflow = params.get(JAVA_INT, P_CQ_OFF + CQ_OVERFLOW);
        this.cqMask = cqRing.get(JAVA_INT, params.get(JAVA_INT, P_CQ_OFF + 8));
        this.cqes = cqCqes;
        // The SQ index array maps ring slots to SQEs: identity, once, as liburing does; then only the tail moves.
        for (int i = 0; i < sqEntries; i++) {
            sqRing.set(JAVA_INT, sqArray + 4L * i, i);
        }
        this.localSqTail = (int) INT.getAcquire(sqRing, sqTail);
        this.localCqHead = (int) INT.getAcquire(cqRing, cqHead);
        getEventsArg.set(JAVA_LONG, ARG_TS, timespec.address());
    }

    private long map(int ringFd, long length, long offset) throws UringUnavailableException {
        long address = UringSyscalls.mapShared(ringFd, length, offset, state);
        if (address < 0) {
            int errno = (int) -address;
            throw new UringUnavailableException("mmap of the io_uring rings failed: " + UringSyscalls.name(errno)
                    + (errno == UringSyscalls.ENOMEM ? " (RLIMIT_MEMLOCK too small for the rings? raise ulimit -l)" : ""));
        }
        return address;
    }

    /**
     * {@code io_uring_setup} with {@code entries} SQ slots (the kernel makes the CQ twice as large) and
     * {@code flags}; refuses kernels without {@code IORING_FEAT_EXT_ARG} (Linux 5.11), which bounded waits need.
     */
    static UringRing setup(int entries, int flags) throws UringUnavailableException {
        try (Arena setupArena = Arena.ofConfined()) {
            MemorySegment params = setupArena.allocate(PARAMS_BYTES, 8);
            params.set(JAVA_INT, P_FLAGS, flags);
            int fd = UringSyscalls.setup(entries, params, UringSyscalls.callState(setupArena));
            if (fd < 0) {
                throw new UringUnavailableException(reason(-fd));
            }
            int features = params.get(JAVA_INT, P_FEATURES);
            try {
                if ((features & IORING_FEAT_EXT_ARG) == 0 || (features & IORING_FEAT_NODROP) == 0) {
                    throw new UringUnavailableException("the kernel's io_uring lacks IORING_FEAT_EXT_ARG or"
                            + " IORING_FEAT_NODROP (needs Linux 5.11 or later)");
                }
                return new UringRing(fd, params, features);
            } catch (RuntimeException e) {
                UringSyscalls.close(fd);
                throw e;
            }
        }
    }

    /** Why {@code io_uring_setup} failed with {@code errno}, in words an operator can act on. */
    static String reason(int errno) {
        String why = switch (errno) {
            case UringSyscalls.ENOSYS -> "not implemented by this kernel (older than 5.1, or built without CONFIG_IO_URING)";
            case UringSyscalls.EPERM -> "not permitted (sysctl kernel.io_uring_disabled, or a seccomp/container"
                    + " policy that forbids io_uring)";
            case UringSyscalls.ENOMEM -> "out of memory (on kernels before 5.12 the rings count against"
                    + " RLIMIT_MEMLOCK: raise ulimit -l)";
            case UringSyscalls.EINVAL -> "invalid ring parameters";
            case UringSyscalls.EMFILE, UringSyscalls.ENFILE -> "out of file descriptors";
            default -> "failed";
        };
        return "io_uring_setup: " + UringSyscalls.name(errno) + ": " + why;
    }

    int sqEntries() {
        return sqEntries;
    }

    int cqEntries() {
        return cqEntries;
    }

    /**
     * Writes one SQE into the next free slot (not yet visible to the kernel: {@link #publish}); false if the SQ
     * is full. Every field is written, so nothing of the slot's previous SQE is left in it.
     */
    boolean prepare(int opcode, int sqeFlags, int fileFd, long offset, long address, int length, int opFlags, long userData) {
        int head = (int) INT.getAcquire(sqRing, sqHead);
        if (localSqTail - head == sqEntries) {
            return false;
        }
        long sqe = (long) (localSqTail & sqMask) * SQE_BYTES;
        sqes.set(JAVA_BYTE, sqe + SQE_OPCODE, (byte) opcode);
        sqes.set(JAVA_BYTE, sqe + SQE_FLAGS, (byte) sqeFlags);
        sqes.set(JAVA_SHORT, sqe + SQE_IOPRIO, (short) 0);
        sqes.set(JAVA_INT, sqe + SQE_FD, fileFd);
        sqes.set(JAVA_LONG, sqe + SQE_OFF, offset);
        sqes.set(JAVA_LONG, sqe + SQE_ADDR, address);
        sqes.set(JAVA_INT, sqe + SQE_LEN, length);
        sqes.set(JAVA_INT, sqe + SQE_OP_FLAGS, opFlags);
        sqes.set(JAVA_LONG, sqe + SQE_USER_DATA, userData);
        sqes.set(JAVA_LONG, sqe + SQE_BUF_INDEX, 0L); // buf_index, personality, splice_fd_in
        sqes.set(JAVA_LONG, sqe + SQE_ADDR3, 0L);
        sqes.set(JAVA_LONG, sqe + SQE_PAD, 0L);
        localSqTail++;
        return true;
    }

    /** Makes the prepared SQEs visible to the kernel; returns how many it has not consumed yet. */
    private int publish() {
        INT.setRelease(sqRing, sqTail, localSqTail);
        return localSqTail - (int) INT.getAcquire(sqRing, sqHead);
    }

    /** SQEs prepared and not yet consumed by the kernel. */
    int unsubmitted() {
        return localSqTail - (int) INT.getAcquire(sqRing, sqHead);
    }

    /**
     * Hands every prepared SQE to the kernel ({@code io_uring_enter} without waiting). Returns 0, or the negated
     * errno that stopped it ({@code -EAGAIN}/{@code -EBUSY}: the SQEs stay and go with the next call).
     */
    int submit() {
        int pending = publish();
        while (pending > 0) {
            int rc = UringSyscalls.enter(fd, pending, 0, 0, 0L, 0L, state);
            if (rc == -UringSyscalls.EINTR) {
                continue;
            }
            if (rc <= 0) {
                return rc;
            }
            pending = unsubmitted(); // an SQE that failed its prep is consumed too, with an error CQE
        }
        return 0;
    }

    /**
     * Submits what is prepared and waits until a CQE is available or {@code nanos} have passed
     * ({@code IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG} with a {@code __kernel_timespec}). Returns early on
     * a signal. The result is the enter's: submitted count, {@code -ETIME}, {@code -EINTR}, ...
     */
    int submitAndWait(long nanos) {
        timespec.set(JAVA_LONG, 0, nanos / 1_000_000_000L);
        timespec.set(JAVA_LONG, 8, nanos % 1_000_000_000L);
        int pending = publish();
        return UringSyscalls.enter(fd, pending, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
                getEventsArg.address(), GETEVENTS_ARG_BYTES, state);
    }

    /**
     * Moves completions the kernel kept aside while the CQ was full ({@code IORING_FEAT_NODROP}) into the CQ:
     * an enter with {@code GETEVENTS} and {@code min_complete} 0 flushes them and returns without waiting.
     */
    void flushOverflow() {
        UringSyscalls.enter(fd, 0, 0, IORING_ENTER_GETEVENTS, 0L, 0L, state);
    }

    /** True if the kernel holds completions that did not fit the CQ ({@code IORING_SQ_CQ_OVERFLOW}). */
    boolean overflowPending() {
        return ((int) INT.getAcquire(sqRing, sqFlags) & IORING_SQ_CQ_OVERFLOW) != 0;
    }

    /** Completions the kernel dropped (the CQ's {@code overflow} counter; stays 0 with NODROP unless memory ran out). */
    int dropped() {
        return (int) INT.getAcquire(cqRing, cqOverflow);
    }

    /** The kernel's CQ tail: CQEs up to it are readable. */
    int cqTail() {
        return (int) INT.getAcquire(cqRing, cqTail);
    }

    int cqHead() {
        return localCqHead;
    }

    boolean cqReady() {
        return localCqHead != cqTail();
    }

    long cqeUserData(int index) {
        return cqRing.get(JAVA_LONG, cqes + (long) (index & cqMask) * CQE_BYTES);
    }

    int cqeResult(int index) {
        return cqRing.get(JAVA_INT, cqes + (long) (index & cqMask) * CQE_BYTES + 8);
    }

    /** Gives CQ slots up to {@code head} back to the kernel (after their CQEs were read). */
    void cqAdvance(int head) {
        localCqHead = head;
        INT.setRelease(cqRing, cqHead, head);
    }

    /**
     * {@code IORING_REGISTER_EVENTFD}: the kernel signals {@code eventFd} for every CQE from now on (Linux 5.1);
     * 0, or a negated errno.
     */
    int registerEventfd(int eventFd) {
        timespec.set(JAVA_INT, 0, eventFd); // a scratch int: the syscall copies it
        return UringSyscalls.register(fd, UringSyscalls.IORING_REGISTER_EVENTFD, timespec.address(), 1, state);
    }

    /** Unmaps the rings and closes the ring fd; the kernel cancels whatever is still in flight. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        UringSyscalls.close(fd);
        UringSyscalls.unmap(sqRing.address(), sqRingBytes);
        if (cqRingBytes > 0) {
            UringSyscalls.unmap(cqRing.address(), cqRingBytes);
        }
        UringSyscalls.unmap(sqes.address(), sqesBytes);
        arena.close();
    }
}
