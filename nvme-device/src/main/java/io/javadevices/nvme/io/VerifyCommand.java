package io.javadevices.nvme.io;

import io.javadevices.nvme.model.Namespace;
import io.javadevices.nvme.queue.QueueWorker;
import io.javadevices.nvme.queue.Sqe;
import io.javadevices.nvme.spec.Status;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Verify (0Ch, NVMe 1.4 §6, ONCS bit 7): checks that the blocks can be read, without transferring any data.
 * Marked blocks (Write Uncorrectable) fail with Unrecovered Read Error; otherwise the blocks are read through
 * the backend chunk by chunk into a scratch buffer the worker allocates the first time it verifies, so a file
 * whose read fails fails the Verify too. The null backend has nothing to read. FUA (CDW12 bit 30) first commits
 * the range, as for Read.
 *
 * <p>Size: NVMe 1.4 puts no MDTS limit on Verify (no data moves; QEMU's nvme_verify limits it by its VSL
 * parameter, a field of the NVMe 2.0 I/O-command-set Identify Controller that a 1.4 controller does not
 * have), so the only bound is NLB: 65536 blocks. Between chunks the worker's stop request is honoured.
 */
final class VerifyCommand {
    private final IoContext context;
    private final IoCommandHandler handler;
    private MemorySegment scratch;

    VerifyCommand(IoContext context, IoCommandHandler handler) {
        this.context = context;
        this.handler = handler;
    }

    int execute(Sqe cmd, QueueWorker worker) {
        int sqid = worker.queue().qid;
        Namespace ns = context.namespace(cmd.nsid());
        if (ns != null && handler.offloads(handler.view(ns, worker), true, worker)) {
            return OffloadedCommands.handOver(cmd, worker); // blocking backend calls: not on a polling thread
        }
        int range = LbaRange.check(ns, cmd);
        if (range != Status.SUCCESS) {
            return range;
        }
        long slba = cmd.cdw10and11();
        int blocks = LbaRange.blocks(cmd);
        int status = WriteUncorrectableCommand.readable(context, ns, slba, blocks, cmd, sqid);
        long offset = slba << ns.lbaShift();
        long bytes = (long) blocks << ns.lbaShift();
        if (status == Status.SUCCESS && (cmd.cdw12() & IoCommandHandler.FUA) != 0) {
            status = handler.durable(ns, offset, bytes, sqid, cmd, slba);
        }
        if (status != Status.SUCCESS || ns.backend().readsOnlyZeroes()) {
            return status;
        }
        if (scratch == null) {
            scratch = Arena.ofAuto().allocate(CompareCommand.CHUNK, 4096); // once per worker, on its first Verify
        }
        try {
            for (long done = 0; done < bytes; ) {
                if (done > 0 && worker.stopping()) {
                    return Status.ABORTED_SQ_DELETION; // stopped mid-command: never posted
                }
                long n = Math.min(CompareCommand.CHUNK, bytes - done);
                ns.backend().read(offset + done, scratch.asSlice(0, n));
                done += n;
            }
        } catch (IOException | RuntimeException e) {
            context.errorLog().record(sqid, cmd.cid(), Status.UNRECOVERED_READ_ERROR, slba, cmd.nsid());
            return Status.UNRECOVERED_READ_ERROR;
        }
        return Status.SUCCESS;
    }
}
