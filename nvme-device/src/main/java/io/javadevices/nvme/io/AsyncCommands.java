package io.javadevices.nvme.io;

import io.javadevices.nvme.admin.FeatureState;
import io.javadevices.nvme.backend.AsyncIo;
import io.javadevices.nvme.backend.IoEngine;
import io.javadevices.nvme.backend.IoVector;
import io.javadevices.nvme.dma.DataPointer;
import io.javadevices.nvme.model.GuestErrors;
import io.javadevices.nvme.model.Namespace;
import io.javadevices.nvme.queue.CommandHandler;
import io.javadevices.nvme.queue.InFlight;
import io.javadevices.nvme.queue.NamespaceView;
import io.javadevices.nvme.queue.QueueWorker;
import io.javadevices.nvme.queue.Sqe;
import io.javadevices.nvme.spec.Status;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.GuestMemoryException;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

import static io.javadevices.pci.LittleEndian.INT;
import static io.javadevices.pci.LittleEndian.LONG;

/**
 * The asynchronous half of Read, Write, Flush, Write Zeroes and Dataset Management: for a namespace whose backend
 * has an asynchronous path for this worker ({@link io.javadevices.nvme.backend.BlockBackend#openAsync}), the
 * command takes an {@link InFlight} slot, its data pointer's pieces are copied into the slot's {@link IoVector}
 * as slices of guest memory (so the worker's {@link DataPointer} is free for the next command), the operation is
 * prepared on the backend's {@link AsyncIo} and the command returns {@link #SUBMITTED}; {@link #completed} turns
 * the operation's result into the command's status when the engine reports it, in whatever order.
 *
 * <p>Also the per-worker cache of {@link NamespaceView}s, indexed by NSID: a view is opened the first time this
 * worker executes a command on a namespace object, and opened again when the table holds another object for that
 * NSID (a format, a delete and re-create). RAM and null backends have no asynchronous path and stay synchronous:
 * the worker pays one array load and one comparison for the lookup.
 *
 * <p>Compare, Verify and Copy have no asynchronous form: Compare and Verify read into a buffer of their own and
 * compare, Copy reads then writes through it (each would need a chain of operations with a buffer per slot); on a
 * backend that may block they go to the controller's offload thread ({@link OffloadedCommands}), on RAM and null
 * they run on the worker. Write Uncorrectable touches no backend. They are rare next to reads and writes.
 */
final class AsyncCommands {
    /** What a handler method returns for a command handed to the engine (not a status: statuses are >= 0). */
    static final int SUBMITTED = -1;
    static final int READ = 1, WRITE = 2, FLUSH = 3, ZEROES = 4, DEALLOCATE = 5, RANGES = 6;
    /** A slot whose command runs on the offload thread ({@link OffloadedCommands}). */
    static final int OFFLOADED = 7;
    /** Slot flags: FUA write / write cache disabled (durable); FUA (not write-through); flush after deallocate done. */
    static final int DURABLE = 1, FUA_FLAG = 2, FLUSHED = 4;
    /** Linux errnos an asynchronous backend reports ({@link IoEngine}). */
    static final int EFAULT = 14, ENOTCONN = 107, ESHUTDOWN = 108, ETIMEDOUT = 110;

    private final IoContext context;
    private final FeatureState features;
    private final GuestMemory memory;
    private final NamespaceView[] views;
    /** The offload thread's: never an asynchronous path (that belongs to the queue's worker and engine). */
    private final boolean synchronous;
    /** Buffers an operation may need: the data pointer's pieces plus the splits of bit buckets into discard slices. */
    private final int vectorCapacity;
    /** The asynchronous paths opened on this worker and their namespace IDs ({@link #submitPrepared}). */
    private AsyncIo[] batchedPaths = new AsyncIo[2];
    private int[] batchedNsids = new int[2];
    private int batchedCount;

    AsyncCommands(IoContext context, int pieces, boolean synchronous) {
        this.synchronous = synchronous;
        this.context = context;
        this.features = context.features();
        this.memory = context.memory();
        this.views = new NamespaceView[context.namespaceTable().maxNsid() + 1];
        this.vectorCapacity = vectorCapacity(context, pieces);
    }

    /** Buffers one operation may need: a data pointer's {@code pieces} plus the splits of bit buckets into discard slices. */
    static int vectorCapacity(IoContext context, int pieces) {
        return 2 * pieces + (int) (context.maxTransferBytes() / 65536) + 1;
    }

    /** This worker's view of {@code ns} (opened on first use of that namespace object). */
    NamespaceView view(Namespace ns, QueueWorker worker) {
        int nsid = ns.nsid();
        NamespaceView v = nsid < views.length ? views[nsid] : null;
        if (v != null && v.namespace() == ns) {
            return v;
        }
        return open(ns, worker);
    }

    private NamespaceView open(Namespace ns, QueueWorker worker) {
        IoEngine engine = synchronous ? null : worker.engine();
        AsyncIo async = engine == null ? null : ns.backend().openAsync(engine);
        NamespaceView v = new NamespaceView(ns, async, worker);
        if (ns.nsid() < views.length) {
            views[ns.nsid()] = v;
        }
        if (async != null) {
            worker.viewOpened(v);
            batched(ns.nsid(), async);
        }
        return v;
    }

    /** Keeps {@code async} among the paths {@link #submitPrepared} starts: one per namespace ID, the newest. */
    private void batched(int nsid, AsyncIo async) {
        for (int i = 0; i < batchedCount; i++) {
            if (batchedNsids[i] == nsid) {
                batchedPaths[i] = async; // the namespace was replaced: its old path has nothing held back
                return;
            }
        }
        if (batchedCount == batchedPaths.length) { // once per namespace ID opened on this queue, never per command
            batchedPaths = Arrays.copyOf(batchedPaths, batchedCount * 2);
            batchedNsids = Arrays.copyOf(batchedNsids, batchedCount * 2);
        }
        batchedNsids[batchedCount] = nsid;
        batchedPaths[batchedCount++] = async;
    }

    /** Starts what each opened path holds back (see {@link AsyncIo#submit}): after every engine submit. */
    void submitPrepared() {
        for (int i = 0; i < batchedCount; i++) {
            batchedPaths[i].submit();
        }
    }

    /**
     * Read or Write whose data pointer {@code data} is mapped: hands it to the engine. {@code durable}: a write that
     * must be durable when it completes ({@link IoCommandHandler#durableWrite}), {@code fua}: because of FUA.
     */
    int transfer(Sqe cmd, QueueWorker worker, NamespaceView view, DataPointer data, long slba, long bytes,
                 boolean write, boolean durable, boolean fua) {
        InFlight slots = worker.inFlight();
        int tag = slots.claim(); // never -1: the worker fetched this command only with a slot free
        IoVector vector = slots.vector(tag, vectorCapacity);
        try {
            for (int i = 0; i < data.count(); i++) {
                long length = data.length(i);
                boolean added = data.isBitBucket(i) ? vector.addDiscard(length)
                        : vector.add(memory.slice(data.address(i), length));
                if (!added) {
                    slots.release(tag);
                    return Status.INTERNAL_ERROR; // cannot happen: vectorCapacity covers every mappable pointer
                }
            }
        } catch (GuestMemoryException | InternalError e) {
            slots.release(tag);
            context.guestErrors().record(GuestErrors.Kind.DMA_OUTSIDE_MEMORY,
                    e instanceof GuestMemoryException g ? g.address() : -1);
            return Status.DATA_TRANSFER_ERROR;
        }
        Namespace ns = view.namespace();
        slots.set(tag, cmd.cid(), write ? WRITE : READ, view, slba, bytes,
                (durable ? DURABLE : 0) | (fua ? FUA_FLAG : 0), System.nanoTime());
        view.started();
        long offset = slba << ns.lbaShift();
        if (write) {
            view.async().write(tag, offset, vector, durable);
        } else {
            view.async().read(tag, offset, vector);
        }
        return SUBMITTED;
    }

    /** Flush of one namespace. */
    int flush(Sqe cmd, QueueWorker worker, NamespaceView view) {
        int tag = start(cmd, worker, view, FLUSH, 0, 0, 0);
        view.async().flush(tag);
        return SUBMITTED;
    }

    /** Write Zeroes: zeroes written, or with {@code deallocate} the range deallocated (then flushed if durable). */
    int writeZeroes(Sqe cmd, QueueWorker worker, NamespaceView view, long slba, long blocks, boolean deallocate,
                    boolean fua) {
        Namespace ns = view.namespace();
        boolean durable = IoCommandHandler.durableWrite(features, ns, fua);
        int tag = start(cmd, worker, view, deallocate ? DEALLOCATE : ZEROES, slba, blocks,
                (durable ? DURABLE : 0) | (fua ? FUA_FLAG : 0));
        long offset = slba << ns.lbaShift(), length = blocks << ns.lbaShift();
        if (deallocate) {
            view.async().deallocate(tag, offset, length);
        } else {
            view.async().writeZeroes(tag, offset, length, durable);
        }
        return SUBMITTED;
    }

    /**
     * Dataset Management deallocate of {@code count} validated ranges ({@code ranges}: 16-byte entries, NLB at
     * byte 4, SLBA at byte 8): one operation per range, one after another in the same slot.
     */
    int deallocate(Sqe cmd, QueueWorker worker, NamespaceView view, MemorySegment ranges, int count) {
        int tag = start(cmd, worker, view, RANGES, 0, 0, 0);
        InFlight slots = worker.inFlight();
        long[] pairs = slots.ranges(tag, 256);
        for (int i = 0; i < count; i++) {
            pairs[2 * i] = ranges.get(LONG, 16L * i + 8);
            pairs[2 * i + 1] = ranges.get(INT, 16L * i + 4) & 0xFFFF_FFFFL;
        }
        slots.ranges(tag, count, 0);
        nextRange(slots, tag, view);
        return SUBMITTED;
    }

    private void nextRange(InFlight slots, int tag, NamespaceView view) {
        int i = slots.rangeNext(tag);
        long[] pairs = slots.rangesOf(tag);
        slots.ranges(tag, slots.rangeCount(tag), i + 1);
        int shift = view.namespace().lbaShift();
        view.async().deallocate(tag, pairs[2 * i] << shift, pairs[2 * i + 1] << shift);
    }

    private static int start(Sqe cmd, QueueWorker worker, NamespaceView view, int kind, long slba, long blocks,
                             int flags) {
        InFlight slots = worker.inFlight();
        int tag = slots.claim();
        slots.set(tag, cmd.cid(), kind, view, slba, blocks, flags, System.nanoTime());
        view.started();
        return tag;
    }

    /**
     * The operation of slot {@code tag} completed with {@code result}: the command's result, or
     * {@link CommandHandler#DEFERRED} while it goes on (the next DSM range, the flush after a durable deallocate).
     */
    long completed(int tag, int result, QueueWorker worker) {
        InFlight slots = worker.inFlight();
        NamespaceView view = slots.view(tag);
        Namespace ns = view.namespace();
        int kind = slots.kind(tag);
        int flags = slots.flags(tag);
        if (result >= 0) {
            if (kind == RANGES) {
                int done = slots.rangeNext(tag) - 1;
                long[] pairs = slots.rangesOf(tag);
                WriteUncorrectableCommand.rewritten(ns, pairs[2 * done], pairs[2 * done + 1]);
                if (done + 1 < slots.rangeCount(tag)) {
                    nextRange(slots, tag, view);
                    return CommandHandler.DEFERRED;
                }
            } else if (kind == DEALLOCATE && (flags & DURABLE) != 0 && (flags & FLUSHED) == 0) {
                // Write Zeroes with DEAC and FUA (or the cache off): the deallocation made durable by a flush.
                slots.set(tag, slots.cid(tag), kind, view, slots.slba(tag), slots.bytes(tag), flags | FLUSHED,
                        slots.start(tag));
                view.async().flush(tag);
                return CommandHandler.DEFERRED;
            }
        }
        view.finished(System.nanoTime() - slots.start(tag));
        int status = result >= 0 ? succeeded(tag, slots, worker, ns, kind, flags) : failed(tag, slots, worker, ns,
                kind, flags, -result);
        return CommandHandler.result(status);
    }

    private int succeeded(int tag, InFlight slots, QueueWorker worker, Namespace ns, int kind, int flags) {
        long slba = slots.slba(tag), n = slots.bytes(tag);
        switch (kind) {
            case READ -> worker.stats().countRead(n);
            case WRITE -> {
                WriteUncorrectableCommand.rewritten(ns, slba, n >>> ns.lbaShift());
                countDurable(ns, flags);
                worker.stats().countWrite(n);
            }
            case ZEROES, DEALLOCATE -> {
                WriteUncorrectableCommand.rewritten(ns, slba, n); // n is the block count here
                countDurable(ns, flags);
            }
            case FLUSH -> worker.stats().countFlush();
            default -> {
            }
        }
        return Status.SUCCESS;
    }

    private static void countDurable(Namespace ns, int flags) {
        if ((flags & DURABLE) != 0) { // FUA_FLAG implies DURABLE
            ns.countDurableWrite((flags & FUA_FLAG) != 0);
        }
    }

    /**
     * A failed operation's status: guest memory the backend could not touch is Data Transfer Error (the guest's
     * mistake, counted); a network backend without its connection is Namespace Not Ready (retryable, NVMe 1.4
     * Figure 128: the host retries, as Linux does for a path that is coming back); otherwise the media statuses
     * of the synchronous path, each with an Error Information log entry.
     */
    private int failed(int tag, InFlight slots, QueueWorker worker, Namespace ns, int kind, int flags, int errno) {
        if (errno == EFAULT) {
            context.guestErrors().record(GuestErrors.Kind.DMA_OUTSIDE_MEMORY, -1);
            return Status.DATA_TRANSFER_ERROR;
        }
        int status;
        if (errno == ENOTCONN || errno == ESHUTDOWN || errno == ETIMEDOUT) {
            status = Status.NAMESPACE_NOT_READY;
        } else if (kind == FLUSH || (flags & DURABLE) != 0) {
            status = IoCommandHandler.SYNC_FAILED;
        } else if (kind == READ) {
            status = Status.UNRECOVERED_READ_ERROR;
        } else if (kind == RANGES) {
            status = Status.INTERNAL_ERROR; // as the synchronous Dataset Management
        } else {
            status = Status.WRITE_FAULT;
        }
        long lba = kind == RANGES || kind == FLUSH ? 0 : slots.slba(tag);
        context.errorLog().record(worker.queue().qid, slots.cid(tag), status, lba, ns.nsid());
        return status;
    }
}
