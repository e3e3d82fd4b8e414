package io.javadevices.nvme.io;

import io.javadevices.nvme.model.Namespace;
import io.javadevices.nvme.model.UncorrectableBlocks;
import io.javadevices.nvme.queue.Sqe;
import io.javadevices.nvme.spec.Status;

/**
 * Write Uncorrectable (04h, NVMe 1.4 §6, ONCS bit 1) and what it leaves behind: the command marks blocks
 * ({@link UncorrectableBlocks}); every command that reads a marked block fails with Unrecovered Read Error and
 * logs the first marked LBA in the Error Information log ({@link #readable}); every command that writes or
 * deallocates a block heals it ({@link #rewritten}). SLBA in CDW10-11, NLB (0-based) in CDW12 bits 15:0; no
 * data transfer, so not limited by MDTS (like Write Zeroes).
 *
 * <p>The read-path status carries DNR: the block stays unreadable until rewritten, so Linux's retries
 * (nvme_decide_disposition) could only fail the same way. Both checks are one volatile read while no block
 * of the namespace was ever marked.
 */
final class WriteUncorrectableCommand {
    /** A read touched a marked block: not retryable, the mark stays until the block is rewritten. */
    static final int MARKED = Status.UNRECOVERED_READ_ERROR | Status.DNR;

    private final IoContext context;

    WriteUncorrectableCommand(IoContext context) {
        this.context = context;
    }

    int execute(Sqe cmd, int sqid) {
        Namespace ns = context.namespace(cmd.nsid());
        int range = LbaRange.check(ns, cmd);
        if (range != Status.SUCCESS) {
            return range;
        }
        if (IoCommandHandler.writeProtected(ns)) {
            return Status.NAMESPACE_WRITE_PROTECTED; // it would change what reads return
        }
        long slba = cmd.cdw10and11();
        int blocks = LbaRange.blocks(cmd);
        if (!ns.uncorrectable().mark(slba, blocks)) {
            // The set is full (UncorrectableBlocks.MAX_RANGES): refusing is honest, marking fewer would not be.
            context.errorLog().record(sqid, cmd.cid(), Status.INTERNAL_ERROR | Status.DNR, slba, cmd.nsid());
            return Status.INTERNAL_ERROR | Status.DNR;
        }
        return Status.SUCCESS;
    }

    /**
     * {@link Status#SUCCESS} if no block of {@code [slba, slba + blocks)} is marked; otherwise logs the first
     * marked LBA and returns {@link #MARKED}.
     */
    static int readable(IoContext context, Namespace ns, long slba, long blocks, Sqe cmd, int sqid) {
        UncorrectableBlocks marks = ns.uncorrectable();
        if (marks.isEmpty()) {
            return Status.SUCCESS;
        }
        long lba = marks.firstMarked(slba, blocks);
        if (lba < 0) {
            return Status.SUCCESS;
        }
        context.errorLog().record(sqid, cmd.cid(), MARKED, lba, cmd.nsid());
        return MARKED;
    }

    /** The blocks were written, zeroed or deallocated: they are readable again. */
    static void rewritten(Namespace ns, long slba, long blocks) {
        UncorrectableBlocks marks = ns.uncorrectable();
        if (!marks.isEmpty()) {
            marks.clear(slba, blocks);
        }
    }
}
