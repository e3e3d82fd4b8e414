package io.javadevices.nvme.admin;

import io.javadevices.nvme.queue.CompletionQueue;
import io.javadevices.nvme.queue.Sqe;
import io.javadevices.nvme.queue.SubmissionQueue;
import io.javadevices.nvme.spec.Status;

/**
 * Create/Delete I/O Submission/Completion Queue (NVMe 1.4 §5.3-5.6). Queues must be physically
 * contiguous (CAP.CQR = 1, so PC = 0 is Invalid Field), page aligned and inside guest memory.
 */
final class QueueCommands {
    private final AdminContext context;

    QueueCommands(AdminContext context) {
        this.context = context;
    }

    private boolean validQid(int qid) {
        return qid >= 1 && qid <= context.maxIoQueues();
    }

    private boolean validBase(long base, long bytes) {
        return base != 0 && (base & (context.pageSize() - 1)) == 0 && context.memory().isMapped(base, bytes);
    }

    /** Create I/O CQ (05h): CDW10 QSIZE 31:16 (0-based) QID 15:0; CDW11 IV 31:16, IEN bit 1, PC bit 0. */
    int createCompletionQueue(Sqe cmd) {
        int qid = cmd.cdw10() & 0xFFFF;
        int entries = (cmd.cdw10() >>> 16) + 1;
        int vector = cmd.cdw11() >>> 16;
        boolean ien = (cmd.cdw11() & 2) != 0;
        boolean contiguous = (cmd.cdw11() & 1) != 0;
        if (!validQid(qid) || context.queues().completionQueue(qid) != null) {
            return Status.INVALID_QUEUE_IDENTIFIER;
        }
        if (entries < 2 || entries > context.options().mqes() + 1) {
            return Status.INVALID_QUEUE_SIZE;
        }
        if (!contiguous) {
            return Status.INVALID_FIELD;
        }
        if (vector >= context.msixVectors()) {
            return Status.INVALID_INTERRUPT_VECTOR;
        }
        if (!validBase(cmd.prp1(), 16L * entries)) {
            return Status.INVALID_FIELD;
        }
        context.queues().installCompletionQueue(new CompletionQueue(qid, entries, cmd.prp1(), vector, ien));
        return Status.SUCCESS;
    }

    /** Create I/O SQ (01h): CDW10 QSIZE/QID; CDW11 CQID 31:16, QPRIO 2:1, PC bit 0. */
    int createSubmissionQueue(Sqe cmd) {
        int qid = cmd.cdw10() & 0xFFFF;
        int entries = (cmd.cdw10() >>> 16) + 1;
        int cqid = cmd.cdw11() >>> 16;
        boolean contiguous = (cmd.cdw11() & 1) != 0;
        if (!validQid(qid) || context.queues().submissionQueue(qid) != null) {
            return Status.INVALID_QUEUE_IDENTIFIER;
        }
        CompletionQueue cq = cqid == 0 ? null : context.queues().completionQueue(cqid);
        if (cq == null) {
            return Status.COMPLETION_QUEUE_INVALID;
        }
        if (entries < 2 || entries > context.options().mqes() + 1) {
            return Status.INVALID_QUEUE_SIZE;
        }
        if (!contiguous || !validBase(cmd.prp1(), 64L * entries)) {
            return Status.INVALID_FIELD;
        }
        context.queues().installSubmissionQueue(new SubmissionQueue(qid, entries, cmd.prp1(), cq, (cmd.cdw11() >>> 1) & 3));
        return Status.SUCCESS;
    }

    /** Delete I/O SQ (00h): stops its worker; entries not yet fetched are dropped. */
    int deleteSubmissionQueue(Sqe cmd) {
        int qid = cmd.cdw10() & 0xFFFF;
        SubmissionQueue sq = validQid(qid) ? context.queues().submissionQueue(qid) : null;
        if (sq == null) {
            return Status.INVALID_QUEUE_IDENTIFIER;
        }
        context.queues().removeSubmissionQueue(sq);
        return Status.SUCCESS;
    }

    /** Delete I/O CQ (04h): Invalid Queue Deletion while an SQ still uses it. */
    int deleteCompletionQueue(Sqe cmd) {
        int qid = cmd.cdw10() & 0xFFFF;
        CompletionQueue cq = validQid(qid) ? context.queues().completionQueue(qid) : null;
        if (cq == null) {
            return Status.INVALID_QUEUE_IDENTIFIER;
        }
        if (cq.hasSubmissionQueues()) {
            return Status.INVALID_QUEUE_DELETION;
        }
        context.queues().removeCompletionQueue(cq);
        return Status.SUCCESS;
    }
}
