package io.javadevices.nvme.queue;

import io.javadevices.nvme.spec.Nvme;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.GuestMemoryException;

/**
 * What Doorbell Buffer Config writes into the new pages before the queues use them, so that the shadow
 * starts equal to the controller's view of each queue (QEMU hw/nvme nvme_dbbuf_config writes each queue's
 * tail/head into its new slot; SPDK nvmf vfio-user copy_doorbells copies its doorbells into the new buffer).
 *
 * <p>Without it a queue that already ran commands (through MMIO doorbells or older DBBUF pages) reads
 * the fresh page's 0 as "the host submitted up to slot 0" and executes every stale ring slot from its
 * head round to 0.
 *
 * <p>I/O queues: a slot that holds a valid non-zero value is kept: a host that pointed its queues at the
 * page before sending the command (Linux before 6.8 unquiesced I/O before nvme_dbbuf_set on reset)
 * already wrote its tail there, and that tail is the truth. A zero (Linux zeroes the pages) or an
 * out-of-range value is replaced by the controller's view. The SQ EventIdx is set to the resulting tail,
 * so the host's next submission crosses it and rings.
 *
 * <p>Admin queue (as QEMU, unlike Linux and SPDK, which never shadow it): slot 0's tail and head are
 * written at configuration and mirrored on every admin MMIO doorbell (QEMU nvme_process_db), together
 * with EventIdx = the same value, so a host that does use admin shadow doorbells reads consistent values
 * and is told to ring for every admin command. The controller itself keeps taking the admin queue's
 * tail and head from BAR0.
 */
final class ShadowSeeding {
    private ShadowSeeding() {
    }

    /** Seeds an existing I/O SQ's new slot pair (before the queue is switched to it). */
    static void submission(GuestMemory memory, SubmissionQueue sq, ShadowDoorbell next) {
        int tail = seedSlot(memory, next.shadowAddress(), sq.knownTail(), sq.size);
        store(memory, next.eventIdxAddress(), tail);
    }

    /** Seeds an existing I/O CQ's new head slot (its EventIdx is armed by the association itself). */
    static void completion(GuestMemory memory, CompletionQueue cq, long shadowPage) {
        seedSlot(memory, shadowPage + 8L * cq.qid + 4, cq.knownHead(), cq.size);
    }

    /** Writes the admin queue's current tail and head into slot 0 of both pages. */
    static void admin(GuestMemory memory, SubmissionQueue sq, CompletionQueue cq, DbbufPages pages) {
        if (sq != null) {
            mirrorAdmin(memory, pages, 0, false, sq.mmioTail());
        }
        if (cq != null) {
            mirrorAdmin(memory, pages, 0, true, cq.mmioHead());
        }
    }

    /**
     * An accepted MMIO doorbell value (tail, or head if {@code completion}): for the admin queue with
     * DBBUF active ({@code pages} non-null), copied into slot 0 and its EventIdx; otherwise nothing.
     */
    static void mirrorAdmin(GuestMemory memory, DbbufPages pages, int qid, boolean completion, int value) {
        if (qid != 0 || pages == null) {
            return;
        }
        int offset = completion ? 4 : 0;
        store(memory, pages.shadow() + offset, value);
        store(memory, pages.eventIdx() + offset, value);
    }

    /** Keeps a valid non-zero host value, else writes {@code view}; returns the value the slot now holds. */
    private static int seedSlot(GuestMemory memory, long address, int view, int entries) {
        try {
            int current = memory.loadIntAcquire(address);
            if (current != 0 && Nvme.validDoorbell(current, entries)) {
                return current;
            }
            memory.storeIntRelease(address, view);
        } catch (GuestMemoryException e) {
            // validated as mapped by the command; unmapped since: the queue falls back to MMIO on first use
        }
        return view;
    }

    private static void store(GuestMemory memory, long address, int value) {
        try {
            memory.storeIntRelease(address, value & 0xFFFF);
        } catch (GuestMemoryException e) {
            // as above: nothing to seed in a page that is gone
        }
    }
}
