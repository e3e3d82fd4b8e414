package io.javadevices.nvme.io;

import io.javadevices.nvme.backend.BlockBackend;
import io.javadevices.nvme.dma.DataPointer;
import io.javadevices.nvme.model.GuestErrors;
import io.javadevices.nvme.model.Namespace;
import io.javadevices.nvme.queue.QueueWorker;
import io.javadevices.nvme.queue.Sqe;
import io.javadevices.nvme.spec.Status;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.GuestMemoryException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Compare (05h, NVMe 1.4 §6, ONCS bit 0): reads the blocks and compares them with the host's buffer; any
 * difference is Compare Failure. The checks are Read's (NSID, MDTS, LBA range, data pointer, then marked blocks,
 * as QEMU's nvme_compare). FUA (CDW12 bit 30) first commits the range, as for Read. The blocks are read chunk by chunk into a scratch buffer the worker allocates
 * the first time it compares, and compared in place with zero-copy slices of guest memory.
 */
final class CompareCommand {
    /** Scratch buffer size: the backend reads this much per call. */
    static final int CHUNK = 128 * 1024;

    private final IoContext context;
    private final IoCommandHandler handler;
    private final GuestMemory memory;
    private final DataPointer data;
    private final long maxTransferBytes;
    private MemorySegment scratch;

    CompareCommand(IoContext context, IoCommandHandler handler, DataPointer data) {
        this.context = context;
        this.handler = handler;
        this.memory = context.memory();
        this.data = data;
        this.maxTransferBytes = context.maxTransferBytes();
    }

    /** The one walk of this command's data pointer: PRP1/PRP2 or an SGL, by PSDT. */
    private int mapData(Sqe cmd, long bytes) {
        return data.map(cmd, bytes, false); // host → controller: PRPs or SGLs by PSDT
    }

    int execute(Sqe cmd, QueueWorker worker) {
        int sqid = worker.queue().qid;
        Namespace ns = context.namespace(cmd.nsid());
        if (ns != null && handler.offloads(handler.view(ns, worker), true, worker)) {
            return OffloadedCommands.handOver(cmd, worker); // blocking backend calls: not on a polling thread
        }
        int range = LbaRange.checkTransfer(ns, cmd, maxTransferBytes);
        if (range != Status.SUCCESS) {
            return range;
        }
        long slba = cmd.cdw10and11();
        int blocks = LbaRange.blocks(cmd);
        long bytes = (long) blocks << ns.lbaShift();
        int status = mapData(cmd, bytes);
        if (status != Status.SUCCESS) {
            return status;
        }
        status = WriteUncorrectableCommand.readable(context, ns, slba, blocks, cmd, sqid);
        if (status != Status.SUCCESS) {
            return status;
        }
        if ((cmd.cdw12() & IoCommandHandler.FUA) != 0) {
            status = handler.durable(ns, slba << ns.lbaShift(), bytes, sqid, cmd, slba);
            if (status != Status.SUCCESS) {
                return status;
            }
        }
        if (scratch == null) {
            scratch = Arena.ofAuto().allocate(CHUNK, 4096); // once per worker, on its first Compare
        }
        try {
            return compare(ns.backend(), slba << ns.lbaShift(), worker);
        } catch (GuestMemoryException | InternalError e) { // InternalError: truncated guest RAM (see GuestMemory)
            context.guestErrors().record(GuestErrors.Kind.DMA_OUTSIDE_MEMORY,
                    e instanceof GuestMemoryException g ? g.address() : -1);
            return Status.DATA_TRANSFER_ERROR;
        } catch (IOException | RuntimeException e) {
            context.errorLog().record(sqid, cmd.cid(), Status.UNRECOVERED_READ_ERROR, slba, cmd.nsid());
            return Status.UNRECOVERED_READ_ERROR;
        }
    }

    private int compare(BlockBackend backend, long offset, QueueWorker worker) throws GuestMemoryException, IOException {
        for (int i = 0; i < data.count(); i++) {
            if (i > 0 && worker.stopping()) {
                return Status.ABORTED_SQ_DELETION; // stopped mid-command: never posted
            }
            MemorySegment host = memory.slice(data.address(i), data.length(i));
            for (long done = 0; done < host.byteSize(); ) {
                long n = Math.min(CHUNK, host.byteSize() - done);
                backend.read(offset, scratch.asSlice(0, n));
                if (MemorySegment.mismatch(scratch, 0, n, host, done, done + n) >= 0) {
                    return Status.COMPARE_FAILURE;
                }
                done += n;
                offset += n;
            }
        }
        return Status.SUCCESS;
    }
}
