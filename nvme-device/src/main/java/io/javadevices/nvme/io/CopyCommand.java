package io.javadevices.nvme.io;

import io.javadevices.nvme.dma.DataPointer;
import io.javadevices.nvme.model.CopyLimits;
import io.javadevices.nvme.model.GuestErrors;
import io.javadevices.nvme.model.Namespace;
import io.javadevices.nvme.queue.QueueWorker;
import io.javadevices.nvme.queue.Sqe;
import io.javadevices.nvme.spec.Status;
import io.javadevices.pci.GuestMemoryException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static io.javadevices.pci.LittleEndian.LONG;
import static io.javadevices.pci.LittleEndian.SHORT;

/**
 * Copy (19h, NVMe 2.0 NVM Command Set, ONCS bit 8): copies up to {@link CopyLimits#maxSourceRanges()} source
 * ranges of the namespace, one after the other, to the blocks starting at SDLBA (CDW10-11). CDW12: NR (7:0,
 * 0-based), Descriptor Format (11:8; only format 0, Identify Controller OCFS bit 0), FUA (30). The source range
 * entries (format 0, 32 bytes: SLBA at byte 8, NLB 0-based at byte 16) are fetched from host memory through the
 * data pointer.
 *
 * <p>Checks, in QEMU nvme_copy's order, all before any block moves: a format other than 0 → Invalid Field; more
 * ranges than MSRC + 1 → Command Size Limit Exceeded; the entries unreadable → Data Transfer Error; a range
 * longer than MSSRL or a total beyond MCL → Command Size Limit Exceeded; a source or the destination beyond the
 * namespace → LBA Out of Range; a marked source block → Unrecovered Read Error.
 *
 * <p>Overlap: every source range is read into the worker's copy buffer (MCL blocks, allocated on its first Copy)
 * before the destination is written, so the destination receives what the sources held when the command
 * started, whatever the ranges overlap (QEMU copies range by range, so there a later source can see an earlier
 * range's destination). The destination's Write Uncorrectable marks are healed; FUA and a disabled write cache
 * make it durable as for Write.
 */
final class CopyCommand {
    private final IoContext context;
    private final IoCommandHandler handler;
    private final DataPointer data;
    private final MemorySegment entries =
            MemorySegment.ofArray(new long[CopyLimits.maxSourceRanges() * CopyLimits.RANGE_ENTRY_BYTES / 8]);
    private MemorySegment buffer;

    CopyCommand(IoContext context, IoCommandHandler handler, DataPointer data) {
        this.context = context;
        this.handler = handler;
        this.data = data;
    }

    /** The one walk of this command's data pointer: PRP1/PRP2 or an SGL, by PSDT. */
    private int mapData(Sqe cmd, long bytes) {
        return data.map(cmd, bytes, false); // host → controller: PRPs or SGLs by PSDT
    }

    private static long sourceLba(MemorySegment entries, int i) {
        return entries.get(LONG, (long) CopyLimits.RANGE_ENTRY_BYTES * i + 8);
    }

    private static int sourceBlocks(MemorySegment entries, int i) {
        return (entries.get(SHORT, (long) CopyLimits.RANGE_ENTRY_BYTES * i + 16) & 0xFFFF) + 1;
    }

    int execute(Sqe cmd, QueueWorker worker) {
        int sqid = worker.queue().qid;
        Namespace ns = context.namespace(cmd.nsid());
        if (ns == null) {
            return Status.INVALID_NAMESPACE_OR_FORMAT;
        }
        if (handler.offloads(handler.view(ns, worker), true, worker)) {
            return OffloadedCommands.handOver(cmd, worker); // blocking backend calls: not on a polling thread
        }
        if (IoCommandHandler.writeProtected(ns)) {
            return Status.NAMESPACE_WRITE_PROTECTED; // the destination is this namespace
        }
        int cdw12 = cmd.cdw12();
        if ((cdw12 >>> 8 & 0xF) != 0) {
            return Status.INVALID_FIELD; // OCFS advertises source range format 0 only
        }
        int ranges = (cdw12 & 0xFF) + 1;
        if (ranges > CopyLimits.maxSourceRanges()) {
            return Status.COMMAND_SIZE_LIMIT_EXCEEDED;
        }
        long listBytes = (long) ranges * CopyLimits.RANGE_ENTRY_BYTES;
        int status = mapData(cmd, listBytes);
        if (status != Status.SUCCESS) {
            return status;
        }
        try {
            data.copyFromGuest(entries, listBytes);
        } catch (GuestMemoryException e) {
            context.guestErrors().record(GuestErrors.Kind.DMA_OUTSIDE_MEMORY, e.address());
            return Status.DATA_TRANSFER_ERROR;
        }
        status = check(ns, ranges, cmd.cdw10and11());
        if (status != Status.SUCCESS) {
            return status;
        }
        for (int i = 0; i < ranges; i++) {
            status = WriteUncorrectableCommand.readable(context, ns, sourceLba(entries, i), sourceBlocks(entries, i), cmd, sqid);
            if (status != Status.SUCCESS) {
                return status;
            }
        }
        if (buffer == null) {
            buffer = Arena.ofAuto().allocate(CopyLimits.BUFFER_BYTES, 4096); // once per worker, on its first Copy
        }
        return copy(ns, ranges, cmd, sqid);
    }

    /** Limits and ranges of the fetched entries and the destination, before anything moves. */
    private int check(Namespace ns, int ranges, long sdlba) {
        int mssrl = CopyLimits.maxSourceRangeLength(ns.lbaShift());
        long total = 0;
        for (int i = 0; i < ranges; i++) {
            int blocks = sourceBlocks(entries, i);
            if (blocks > mssrl) {
                return Status.COMMAND_SIZE_LIMIT_EXCEEDED;
            }
            if (!ns.inRange(sourceLba(entries, i), blocks)) {
                return Status.LBA_OUT_OF_RANGE;
            }
            total += blocks;
        }
        if (total > CopyLimits.maxCopyLength(ns.lbaShift())) {
            return Status.COMMAND_SIZE_LIMIT_EXCEEDED;
        }
        return ns.inRange(sdlba, total) ? Status.SUCCESS : Status.LBA_OUT_OF_RANGE;
    }

    /** Reads every source into the buffer, then writes the buffer to the destination. */
    private int copy(Namespace ns, int ranges, Sqe cmd, int sqid) {
        int shift = ns.lbaShift();
        long at = 0;
        for (int i = 0; i < ranges; i++) {
            long slba = sourceLba(entries, i);
            long bytes = (long) sourceBlocks(entries, i) << shift;
            try {
                ns.backend().read(slba << shift, buffer.asSlice(at, bytes));
            } catch (IOException | RuntimeException e) {
                context.errorLog().record(sqid, cmd.cid(), Status.UNRECOVERED_READ_ERROR, slba, cmd.nsid());
                return Status.UNRECOVERED_READ_ERROR;
            }
            at += bytes;
        }
        long sdlba = cmd.cdw10and11();
        long offset = sdlba << shift;
        try {
            ns.backend().write(offset, buffer.asSlice(0, at));
        } catch (IOException | RuntimeException e) {
            context.errorLog().record(sqid, cmd.cid(), Status.WRITE_FAULT, sdlba, cmd.nsid());
            return Status.WRITE_FAULT;
        }
        WriteUncorrectableCommand.rewritten(ns, sdlba, at >>> shift);
        return handler.writeDurability(ns, (cmd.cdw12() & IoCommandHandler.FUA) != 0, offset, at, sqid, cmd, sdlba);
    }
}
