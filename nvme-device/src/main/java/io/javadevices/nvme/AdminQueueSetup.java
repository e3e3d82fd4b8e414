package io.javadevices.nvme;

import io.javadevices.nvme.queue.CompletionQueue;
import io.javadevices.nvme.queue.SubmissionQueue;
import io.javadevices.nvme.spec.Nvme;
import io.javadevices.pci.GuestMemory;

/** The admin queue pair a CC.EN 0→1 write asks for (NVMe 1.4 §7.6.1), checked against CC, AQA, ASQ, ACQ. */
final class AdminQueueSetup {
    private AdminQueueSetup() {
    }

    /** Host memory page size from CC.MPS (bytes). */
    static int pageSize(int cc) {
        return 4096 << ((cc >>> 7) & 0xF);
    }

    /**
     * The admin SQ (its CQ attached), or null when CC asks for something this controller cannot do
     * (CSS, MPS, AMS, entry sizes) or the queues are malformed: the controller then reports CSTS.CFS.
     */
    static SubmissionQueue admin(int cc, int aqa, long asq, long acq, GuestMemory memory) {
        int css = (cc >>> 4) & 7, mps = (cc >>> 7) & 0xF, ams = (cc >>> 11) & 7;
        int iosqes = (cc >>> 16) & 0xF, iocqes = (cc >>> 20) & 0xF;
        if (css != 0 || mps > Nvme.MPS_MAX || ams != 0 || iosqes != Nvme.SQES_LOG2 || iocqes != Nvme.CQES_LOG2) {
            return null;
        }
        int page = pageSize(cc);
        int sqSize = (aqa & 0xFFF) + 1;
        int cqSize = ((aqa >>> 16) & 0xFFF) + 1;
        if (sqSize < 2 || cqSize < 2 || (asq & (page - 1)) != 0 || (acq & (page - 1)) != 0
                || !memory.isMapped(asq, 64L * sqSize) || !memory.isMapped(acq, 16L * cqSize)) {
            return null;
        }
        CompletionQueue cq = new CompletionQueue(0, cqSize, acq, 0, true);
        SubmissionQueue sq = new SubmissionQueue(0, sqSize, asq, cq, 0);
        cq.attach(sq);
        return sq;
    }
}
