package io.javadevices.nvme.queue;

import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.GuestMemoryException;

import java.lang.foreign.MemorySegment;

/**
 * One queue's pair of Doorbell Buffer Config slots (NVMe 1.3 §5.7 / Base 2.1 Figure 486): the host-owned
 * shadow doorbell entry (read only, acquire, LE32, low 16 bits) and the controller-owned EventIdx entry
 * (written with release, upper 16 bits 0). Slot offsets follow the BAR0 doorbell layout with
 * CAP.DSTRD = 0: SQ y at 8y, CQ y at 8y + 4. The 4-byte slices are cached and re-resolved when the
 * guest memory map changes; if a page is unmapped the access fails and the queue falls back to its
 * polled or MMIO doorbell ({@link DoorbellSource#fallback}).
 */
public final class ShadowDoorbell {
    private record Resolved(long generation, MemorySegment shadow, MemorySegment eventIdx) {
    }

    private final GuestMemory memory;
    private final long shadowAddress;
    private final long eventIdxAddress;
    private volatile Resolved resolved;

    public ShadowDoorbell(GuestMemory memory, long shadowPage, long eventIdxPage, int qid, boolean completion) {
        this.memory = memory;
        long offset = (2L * qid + (completion ? 1 : 0)) * 4;
        this.shadowAddress = shadowPage + offset;
        this.eventIdxAddress = eventIdxPage + offset;
    }

    private Resolved resolve() throws GuestMemoryException {
        Resolved r = resolved;
        long gen = memory.generation();
        if (r == null || r.generation != gen) {
            r = new Resolved(gen, memory.slice(shadowAddress, 4), memory.slice(eventIdxAddress, 4));
            resolved = r;
        }
        return r;
    }

    /** The host's current value (low 16 bits of the LE32 entry), with acquire semantics. */
    public int load() throws GuestMemoryException {
        Resolved r = resolve();
        try {
            return GuestMemory.loadIntAcquire(r.shadow, 0) & 0xFFFF;
        } catch (IllegalStateException | InternalError e) { // unmapped, or its file truncated (GuestMemory)
            throw new GuestMemoryException("shadow doorbell unmapped", shadowAddress, 4);
        }
    }

    /** Publishes EventIdx (release store, upper 16 bits 0). */
    public void publish(int eventIdx) throws GuestMemoryException {
        Resolved r = resolve();
        try {
            GuestMemory.storeIntRelease(r.eventIdx, 0, eventIdx & 0xFFFF);
        } catch (IllegalStateException | InternalError e) { // unmapped, or its file truncated (GuestMemory)
            throw new GuestMemoryException("EventIdx unmapped", eventIdxAddress, 4);
        }
    }

    public long shadowAddress() {
        return shadowAddress;
    }

    public long eventIdxAddress() {
        return eventIdxAddress;
    }
}
