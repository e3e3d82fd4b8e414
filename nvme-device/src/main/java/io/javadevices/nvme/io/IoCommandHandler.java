package io.javadevices.nvme.io;

import io.javadevices.nvme.admin.FeatureState;
import io.javadevices.nvme.backend.BlockBackend;
import io.javadevices.nvme.backend.IoVector;
import io.javadevices.nvme.dma.DataPointer;
import io.javadevices.nvme.model.GuestErrors;
import io.javadevices.nvme.model.Namespace;
import io.javadevices.nvme.queue.CommandHandler;
import io.javadevices.nvme.queue.NamespaceView;
import io.javadevices.nvme.queue.QueueStats;
import io.javadevices.nvme.queue.QueueWorker;
import io.javadevices.nvme.queue.Sqe;
import io.javadevices.nvme.spec.Nvme;
import io.javadevices.nvme.spec.Status;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.GuestMemoryException;

import java.io.IOException;
import java.lang.foreign.MemorySegment;

import static io.javadevices.pci.LittleEndian.INT;
import static io.javadevices.pci.LittleEndian.LONG;

/**
 * NVM command set I/O commands (NVMe 1.4 §6): Read, Write, Flush, Write Zeroes, Dataset Management here;
 * Compare, Verify, Write Uncorrectable and Copy in their own classes, which share this worker's {@link DataPointer}.
 * One instance per I/O queue worker (it owns a {@link DataPointer}, PRPs or SGLs, and a DSM range buffer). Data moves
 * between the backend and zero-copy slices of guest memory; no per-command allocation beyond the
 * slice views. Backend I/O errors become media statuses plus an error log entry, never exceptions.
 *
 * <p>Durability: a Write with FUA (CDW12 bit 30), and every write while the volatile write cache is
 * disabled (Set Features 06h WCE = 0), is durable before it completes ({@link #durableWrite} decides it for every
 * path): the backend's one durable write, {@link BlockBackend#writeDurable}, here and on every engine. A failed
 * durable write or sync is Write Fault with DNR: the backend's failure is sticky, so a retry could only fail again.
 *
 * <p>Asynchronous backends: Read, Write, Flush, Write Zeroes and Dataset Management of a namespace whose backend
 * has an asynchronous path for this worker are handed to the worker's engine by {@link AsyncCommands} and
 * complete later ({@link #completed}); RAM and null namespaces run here synchronously (a memory copy). A command
 * that would call the blocking methods of a backend that may block (Flush of every namespace, Compare, Verify,
 * Copy, Read with FUA, anything without an asynchronous path) never runs on a polling thread: it goes to the
 * controller's offload thread ({@link OffloadedCommands}). Without an engine ({@code io-engine=sync}) the queue
 * has its own thread and runs everything here.
 *
 * <p>Write protection: a namespace whose backend is {@link BlockBackend#readOnly()} completes every command that
 * would modify it with Namespace Is Write Protected (NVMe 1.4 Figure 128; Identify Namespace NSATTR bit 0).
 */
public final class IoCommandHandler implements CommandHandler {
    /** Read/Write/Write Zeroes CDW12 bit 30: Force Unit Access (NVMe 1.4 §6.9, §6.15, §6.16). */
    static final int FUA = 1 << 30;
    /** Write Zeroes CDW12 bit 25: Deallocate (NVMe 1.4 Write Zeroes command; DLFEAT bit 3). */
    static final int DEAC = 1 << 25;
    /** A sync (fdatasync) failed or an earlier one had: not retryable. */
    static final int SYNC_FAILED = Status.WRITE_FAULT | Status.DNR;

    private final IoContext context;
    private final FeatureState features;
    private final GuestMemory memory;
    private final long maxTransferBytes;
    private final DataPointer data;
    private final MemorySegment ranges = MemorySegment.ofArray(new long[4096 / 8]);
    // The other command families, run by the operations of NvmOpcodes.
    final CompareCommand compare;
    final VerifyCommand verify;
    final WriteUncorrectableCommand writeUncorrectable;
    final CopyCommand copy;
    private final AsyncCommands async;
    /** True for the handler that runs offloaded commands on the offload thread ({@link OffloadedCommands}). */
    private final boolean offThread;
    /** This queue's commands that go to the offload thread (null on the offload thread itself). */
    private final OffloadedCommands offloaded;
    /** Where the command running on the offload thread counts (that thread's), or null: the worker's stats. */
    private QueueStats counts;
    /** The slices of a synchronous durable write, handed to the backend in one call; empty between commands. */
    private final IoVector durableData;

    public IoCommandHandler(IoContext context) {
        this(context, false);
    }

    /** @param offThread the handler of the offload thread: every command synchronous, nothing handed over */
    IoCommandHandler(IoContext context, boolean offThread) {
        this.context = context;
        this.offThread = offThread;
        this.offloaded = offThread ? null : new OffloadedCommands(context);
        this.features = context.features();
        this.memory = context.memory();
        this.maxTransferBytes = context.maxTransferBytes();
        this.data = new DataPointer(memory, context.pageSize(), maxTransferBytes, context.guestErrors());
        this.compare = new CompareCommand(context, this, data);
        this.verify = new VerifyCommand(context, this);
        this.writeUncorrectable = new WriteUncorrectableCommand(context);
        this.copy = new CopyCommand(context, this, data);
        int pieces = Math.max((int) (maxTransferBytes / 4096) + 2, 256);
        this.async = new AsyncCommands(context, pieces, offThread);
        this.durableData = new IoVector(AsyncCommands.vectorCapacity(context, pieces));
    }

    @Override
    public long completed(int tag, int result, QueueWorker worker) {
        if (worker.inFlight().kind(tag) == AsyncCommands.OFFLOADED) {
            return OffloadedCommands.completed(result, worker);
        }
        return async.completed(tag, result, worker);
    }

    @Override
    public void submitPrepared() {
        async.submitPrepared();
    }

    @Override
    public long executeOffloaded(Sqe cmd, QueueWorker worker, QueueStats counts) {
        return offloaded == null ? CommandHandler.result(Status.INTERNAL_ERROR) : offloaded.execute(cmd, worker, counts);
    }

    /** Runs {@code cmd} here, counting into {@code counts} (the offload thread's handler). */
    long executeHere(Sqe cmd, QueueWorker worker, QueueStats counts) {
        this.counts = counts;
        return NvmOpcodes.TABLE.execute(this, cmd, worker);
    }

    /** Where the command counts: the worker's statistics, or on the offload thread that thread's. */
    QueueStats stats(QueueWorker worker) {
        return counts != null ? counts : worker.stats();
    }

    /** This worker's view of {@code ns} (its asynchronous path, whether it may block). */
    NamespaceView view(Namespace ns, QueueWorker worker) {
        return async.view(ns, worker);
    }

    /**
     * True if the command must not run on this worker's thread ({@link OffloadedCommands#wanted}); never on the
     * offload thread itself.
     */
    boolean offloads(NamespaceView view, boolean blockingCommand, QueueWorker worker) {
        return !offThread && OffloadedCommands.wanted(view, blockingCommand, worker);
    }

    /** True if {@code ns} may not be modified: its backend refuses writes (NSATTR bit 0). */
    static boolean writeProtected(Namespace ns) {
        return ns.backend().readOnly();
    }

    @Override
    public long execute(Sqe cmd, QueueWorker worker) {
        QueueStats stats = worker.stats();
        stats.countIoCommand();
        int psdt = cmd.psdt();
        if (psdt == DataPointer.PSDT_SGL || psdt == DataPointer.PSDT_SGL_MPTR_SGL) {
            stats.countSgl();
        }
        long result = cmd.fused() != 0
                ? CommandHandler.result(Status.INVALID_FIELD) // no fused operations
                : formatInProgress(cmd.nsid()) ? CommandHandler.result(Status.FORMAT_IN_PROGRESS)
                : NvmOpcodes.TABLE.execute(this, cmd, worker);
        if (CommandHandler.status(result) == AsyncCommands.SUBMITTED) {
            return CommandHandler.DEFERRED; // completes through the engine (AsyncCommands.completed)
        }
        if (CommandHandler.status(result) != Status.SUCCESS) {
            stats.countIoError();
        }
        return result;
    }

    /**
     * A Format NVM is working on the command's namespace: the command is not processed (Format In Progress,
     * NVMe 1.4 Figure 128; retryable). One more lock-free lookup, and a volatile read.
     */
    private boolean formatInProgress(int nsid) {
        Namespace ns = context.namespace(nsid);
        return ns != null && ns.formatInProgress();
    }

    /** Read (NVMe 1.4 §6.9) / Write (§6.15): SLBA in CDW10-11, NLB (0-based) in CDW12 bits 15:0. */
    int readWrite(Sqe cmd, QueueWorker worker, QueueStats stats, boolean write) {
        int sqid = worker.queue().qid;
        Namespace ns = context.namespace(cmd.nsid());
        int range = LbaRange.checkTransfer(ns, cmd, maxTransferBytes);
        if (range != Status.SUCCESS) {
            return range;
        }
        if (write && writeProtected(ns)) {
            return Status.NAMESPACE_WRITE_PROTECTED;
        }
        long slba = cmd.cdw10and11();
        int blocks = LbaRange.blocks(cmd);
        long bytes = (long) blocks << ns.lbaShift();
        int status = data.map(cmd, bytes, !write);
        if (status != Status.SUCCESS) {
            return status;
        }
        if (!write) { // one volatile read while no block of the namespace was ever marked
            status = WriteUncorrectableCommand.readable(context, ns, slba, blocks, cmd, sqid);
            if (status != Status.SUCCESS) {
                return status;
            }
        }
        long offset = slba << ns.lbaShift();
        boolean fua = (cmd.cdw12() & FUA) != 0;
        NamespaceView view = async.view(ns, worker);
        if (offloads(view, !write && fua, worker)) {
            return OffloadedCommands.handOver(cmd, worker); // Read FUA's sync, or a backend without an async path
        }
        boolean durable = write && durableWrite(features, ns, fua);
        if (!write && fua) {
            // Read FUA: "commit that data to non-volatile media, then read it from there" (§6.9). The sync is the
            // commit; the read then comes from the page cache, which after a successful sync holds exactly what
            // the media holds (only O_DIRECT would bypass it, and it could not return anything different).
            status = durable(ns, offset, bytes, sqid, cmd, slba); // here a backend that cannot block, or no offload
            if (status != Status.SUCCESS) {
                return status;
            }
            if (worker.stopping()) {
                return Status.ABORTED_SQ_DELETION; // reset or deleted during the sync: no data into guest memory
            }
        }
        if (view.async() != null) {
            return async.transfer(cmd, worker, view, data, slba, bytes, write, durable, fua);
        }
        try {
            if (!write && ns.backend().readsOnlyZeroes()) {
                zeroFill();
            } else if (durable) {
                writeDurable(ns.backend(), offset);
            } else if (!transfer(ns.backend(), offset, write, worker)) {
                return Status.ABORTED_SQ_DELETION; // stopped mid-transfer: never posted
            }
        } catch (GuestMemoryException | InternalError e) { // InternalError: a backend copy hit truncated guest RAM (GuestMemory)
            context.guestErrors().record(GuestErrors.Kind.DMA_OUTSIDE_MEMORY,
                    e instanceof GuestMemoryException g ? g.address() : -1);
            return Status.DATA_TRANSFER_ERROR;
        } catch (IOException | RuntimeException e) {
            int failed = durable ? SYNC_FAILED : write ? Status.WRITE_FAULT : Status.UNRECOVERED_READ_ERROR;
            context.errorLog().record(sqid, cmd.cid(), failed, slba, cmd.nsid());
            return failed;
        }
        if (write) {
            WriteUncorrectableCommand.rewritten(ns, slba, blocks);
            if (durable) {
                ns.countDurableWrite(fua);
            }
            stats.countWrite(bytes);
        } else {
            stats.countRead(bytes);
        }
        return Status.SUCCESS;
    }

    /**
     * The one decision, for every path and engine, whether a write to {@code ns} must be durable before it
     * completes: it has FUA set, or the volatile write cache is disabled (Set Features 06h WCE = 0, NVMe 1.4
     * §5.21.1.6).
     */
    static boolean durableWrite(FeatureState features, Namespace ns, boolean fua) {
        return fua || features.writeThrough(ns.volatileCache());
    }

    /** After a completed zeroing or Copy: sync it if {@link #durableWrite} says so, and count that. */
    int writeDurability(Namespace ns, boolean fua, long offset, long bytes, int sqid, Sqe cmd, long slba) {
        if (!durableWrite(features, ns, fua)) {
            return Status.SUCCESS;
        }
        int status = durable(ns, offset, bytes, sqid, cmd, slba);
        if (status == Status.SUCCESS) {
            ns.countDurableWrite(fua);
        }
        return status;
    }

    /** Makes {@code [offset, offset + bytes)} durable; a failure is logged and reported as {@link #SYNC_FAILED}. */
    int durable(Namespace ns, long offset, long bytes, int sqid, Sqe cmd, long slba) {
        try {
            ns.backend().sync(offset, bytes);
            return Status.SUCCESS;
        } catch (IOException | RuntimeException e) {
            context.errorLog().record(sqid, cmd.cid(), SYNC_FAILED, slba, cmd.nsid());
            return SYNC_FAILED;
        }
    }

    /**
     * A durable write of the mapped data pointer: its pieces as slices of guest memory, in one call of the
     * backend's durable write (one RWF_DSYNC write for a file). A write never has bit buckets (SGL Bit Bucket
     * descriptors are for controller-to-host transfers only, NVMe 1.4 §4.4).
     */
    private void writeDurable(BlockBackend backend, long offset) throws GuestMemoryException, IOException {
        try {
            for (int i = 0; i < data.count(); i++) {
                if (!durableData.add(memory.slice(data.address(i), data.length(i)))) {
                    throw new IOException("more pieces than a durable write holds"); // cannot happen: sized for MDTS
                }
            }
            backend.writeDurable(offset, durableData);
        } finally {
            durableData.clear();
        }
    }

    /**
     * Moves the data between the guest pieces the data pointer walk found and the backend, slice by slice
     * (the bytes of an SGL Bit Bucket are skipped: not read into the guest); false if the worker was told
     * to stop meanwhile (a reset during a long backend call): no further guest page is touched.
     */
    private boolean transfer(BlockBackend backend, long offset, boolean write, QueueWorker worker)
            throws GuestMemoryException, IOException {
        for (int i = 0; i < data.count(); i++) {
            if (i > 0 && worker.stopping()) {
                return false;
            }
            long length = data.length(i);
            if (!data.isBitBucket(i)) {
                MemorySegment buffer = memory.slice(data.address(i), length);
                if (write) {
                    backend.write(offset, buffer);
                } else {
                    backend.read(offset, buffer);
                }
            }
            offset += length;
        }
        return true;
    }

    /** A read from a backend that only reads zeroes: fill the guest pieces directly (no slices). */
    private void zeroFill() throws GuestMemoryException {
        for (int i = 0; i < data.count(); i++) {
            if (!data.isBitBucket(i)) {
                memory.fill(data.address(i), data.length(i), (byte) 0);
            }
        }
    }

    /**
     * Flush (§6.8); NSID FFFFFFFFh flushes every namespace. After a failed write-back the backend keeps
     * failing (sticky), so this reports {@link #SYNC_FAILED} rather than a success that would be a lie.
     */
    int flush(Sqe cmd, QueueWorker worker) {
        int sqid = worker.queue().qid;
        QueueStats stats = stats(worker);
        int nsid = cmd.nsid();
        try {
            // NSID FFFFFFFFh: one flush per namespace in a row (rare), on the offload thread if this queue has one.
            if (nsid == Nvme.BROADCAST_NSID) {
                if (!offThread && worker.offloadLane() != null) {
                    return OffloadedCommands.handOver(cmd, worker);
                }
                for (Namespace ns : context.namespaces()) {
                    ns.countFlush();
                    ns.backend().flush();
                }
            } else {
                Namespace ns = context.namespace(nsid);
                if (ns == null) {
                    return Status.INVALID_NAMESPACE_OR_FORMAT;
                }
                NamespaceView view = async.view(ns, worker);
                if (view.async() == null && offloads(view, false, worker)) {
                    return OffloadedCommands.handOver(cmd, worker);
                }
                ns.countFlush();
                if (view.async() != null) {
                    return async.flush(cmd, worker, view);
                }
                ns.backend().flush();
            }
        } catch (IOException | RuntimeException e) {
            context.errorLog().record(sqid, cmd.cid(), SYNC_FAILED, 0, nsid);
            return SYNC_FAILED;
        }
        stats.countFlush();
        return Status.SUCCESS;
    }

    /**
     * Write Zeroes (§6.16): no data transfer, so not limited by MDTS; FUA and a disabled cache as for Write.
     * With DEAC (CDW12 bit 25) the blocks are deallocated instead when the backend reads deallocated blocks as
     * zeroes (what DLFEAT says); otherwise zeroes are written, which is what the host asked for either way.
     * Heals Write Uncorrectable marks.
     */
    int writeZeroes(Sqe cmd, QueueWorker worker) {
        int sqid = worker.queue().qid;
        Namespace ns = context.namespace(cmd.nsid());
        int range = LbaRange.check(ns, cmd);
        if (range != Status.SUCCESS) {
            return range;
        }
        if (writeProtected(ns)) {
            return Status.NAMESPACE_WRITE_PROTECTED;
        }
        long slba = cmd.cdw10and11();
        int blocks = LbaRange.blocks(cmd);
        long offset = slba << ns.lbaShift();
        long bytes = (long) blocks << ns.lbaShift();
        NamespaceView view = async.view(ns, worker);
        if (offloads(view, false, worker)) {
            return OffloadedCommands.handOver(cmd, worker); // no asynchronous path for a backend that may block
        }
        if (view.async() != null) {
            return async.writeZeroes(cmd, worker, view, slba, blocks,
                    (cmd.cdw12() & DEAC) != 0 && ns.backend().deallocatedReadsZero(), (cmd.cdw12() & FUA) != 0);
        }
        try {
            if ((cmd.cdw12() & DEAC) != 0 && ns.backend().deallocatedReadsZero()) {
                ns.backend().deallocate(offset, bytes);
            } else {
                ns.backend().writeZeroes(offset, bytes);
            }
        } catch (IOException | RuntimeException e) {
            context.errorLog().record(sqid, cmd.cid(), Status.WRITE_FAULT, slba, cmd.nsid());
            return Status.WRITE_FAULT;
        }
        WriteUncorrectableCommand.rewritten(ns, slba, blocks);
        return writeDurability(ns, (cmd.cdw12() & FUA) != 0, offset, bytes, sqid, cmd, slba);
    }

    /**
     * Dataset Management (§6.7): NR (CDW10 7:0, 0-based) 16-byte ranges at the data pointer; only the
     * Attribute-Deallocate (CDW11 bit 2) changes anything.
     */
    int datasetManagement(Sqe cmd, QueueWorker worker) {
        int sqid = worker.queue().qid;
        Namespace ns = context.namespace(cmd.nsid());
        if (ns == null) {
            return Status.INVALID_NAMESPACE_OR_FORMAT;
        }
        int count = (cmd.cdw10() & 0xFF) + 1;
        int status = data.map(cmd, 16L * count, false);
        if (status != Status.SUCCESS) {
            return status;
        }
        try {
            data.copyFromGuest(ranges, 16L * count);
        } catch (GuestMemoryException e) {
            return Status.DATA_TRANSFER_ERROR;
        }
        if ((cmd.cdw11() & 0x4) == 0) {
            return Status.SUCCESS;
        }
        if (writeProtected(ns)) {
            return Status.NAMESPACE_WRITE_PROTECTED;
        }
        for (int i = 0; i < count; i++) {
            long blocks = ranges.get(INT, 16L * i + 4) & 0xFFFF_FFFFL;
            long slba = ranges.get(LONG, 16L * i + 8);
            if (!ns.inRange(slba, blocks)) {
                return Status.LBA_OUT_OF_RANGE;
            }
        }
        NamespaceView view = async.view(ns, worker);
        if (offloads(view, false, worker)) {
            return OffloadedCommands.handOver(cmd, worker); // no asynchronous path for a backend that may block
        }
        if (view.async() != null) {
            return async.deallocate(cmd, worker, view, ranges, count);
        }
        try {
            for (int i = 0; i < count; i++) {
                long blocks = ranges.get(INT, 16L * i + 4) & 0xFFFF_FFFFL;
                long slba = ranges.get(LONG, 16L * i + 8);
                ns.backend().deallocate(slba << ns.lbaShift(), blocks << ns.lbaShift());
                WriteUncorrectableCommand.rewritten(ns, slba, blocks);
            }
        } catch (IOException | RuntimeException e) {
            context.errorLog().record(sqid, cmd.cid(), Status.INTERNAL_ERROR, 0, cmd.nsid());
            return Status.INTERNAL_ERROR;
        }
        return Status.SUCCESS;
    }
}
