package io.javadevices.nvme.admin;

import io.javadevices.nvme.model.ChangedNamespaces;
import io.javadevices.nvme.queue.QueueWorker;
import io.javadevices.nvme.spec.Status;
import io.javadevices.pci.GuestMemoryException;

import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Asynchronous Event Requests (NVMe 1.4 §5.2): up to AERL+1 outstanding commands (held by the admin
 * worker, completed only when an event occurs), and events raised from any thread (e.g. the MMIO
 * path on an invalid doorbell write). A reported event type stays masked until the host reads the
 * associated log page (§5.2.1). A controller reset drops outstanding requests without a completion
 * ({@link #reset}): it deletes every queue (§7.3.2), no DMA may follow it, and the host expects none.
 */
public final class AsyncEvents {
    /** Identify AERL (0-based): 4 outstanding requests. */
    public static final int AERL = 3;
    /** Error status events (type 0), log page 01h (NVMe 1.4 Figure 146). */
    public static final int INVALID_DOORBELL_REGISTER = 0 | 0x00 << 8 | 0x01 << 16;
    public static final int INVALID_DOORBELL_VALUE = 0 | 0x01 << 8 | 0x01 << 16;
    /** Asynchronous Event Types (NVMe 1.4 Figure 145), and "no event type" for a log page that reports none. */
    public static final int TYPE_ERROR_STATUS = 0, TYPE_SMART_HEALTH = 1, TYPE_NOTICE = 2, NO_EVENT = -1;
    /** Notice, Namespace Attribute Changed (info 00h), log page 04h (NVMe 1.4 §5.2.1). */
    public static final int NAMESPACE_ATTRIBUTE_CHANGED = TYPE_NOTICE | 0x00 << 8 | 0x04 << 16;

    /** The data of log page 04h; it outlives controller resets (it lists changes since the host last read it). */
    private final ChangedNamespaces changedNamespaces = new ChangedNamespaces();

    private final ConcurrentLinkedQueue<Integer> pending = new ConcurrentLinkedQueue<>();
    private volatile int maskedTypes;
    // Owned by the admin worker.
    private final int[] outstanding = new int[AERL + 1];
    private int count;
    /** Events completed to the host, by type (0-7); written by the admin worker only, read by statistics. */
    private final AtomicLongArray postedByType = new AtomicLongArray(8);

    /** Queues an event (any thread); dropped if its type is masked or the same event is already queued. */
    public void raise(int event) {
        if ((maskedTypes & (1 << (event & 7))) != 0 || pending.size() >= 16 || pending.contains(event)) {
            return;
        }
        pending.add(event);
    }

    /** Holds an AER; false if AERL+1 are already outstanding (→ AER Limit Exceeded). */
    boolean submit(int cid) {
        if (count == outstanding.length) {
            return false;
        }
        outstanding[count++] = cid;
        return true;
    }

    /** Admin worker: completes outstanding AERs with queued events. */
    void poll(QueueWorker admin, Runnable interrupt) {
        if (count == 0 || pending.isEmpty()) {
            return;
        }
        Integer event;
        boolean posted = false;
        while (count > 0 && (event = pending.poll()) != null) {
            int type = event & 7;
            if ((maskedTypes & (1 << type)) != 0) {
                continue;
            }
            maskedTypes |= 1 << type;
            int cid = outstanding[0];
            System.arraycopy(outstanding, 1, outstanding, 0, count - 1);
            count--;
            try {
                if (admin.post(cid, Status.SUCCESS, event)) {
                    posted = true;
                    postedByType.incrementAndGet(type);
                }
            } catch (GuestMemoryException e) {
                return;
            }
        }
        if (posted) {
            interrupt.run();
        }
    }

    /**
     * The host read, with RAE = 0, the log page that events of {@code type} report through (the table of
     * {@link LogPages} says which): events of that type may be reported again (§5.2.1). {@link #NO_EVENT}: nothing.
     */
    void unmask(int type) {
        if (type != NO_EVENT) {
            maskedTypes &= ~(1 << type);
        }
    }

    /** The Changed Namespace List (log page 04h). */
    public ChangedNamespaces changedNamespaces() {
        return changedNamespaces;
    }

    public void reset() {
        pending.clear();
        maskedTypes = 0;
        count = 0;
    }

    /**
     * Adds {@code events.error}, {@code events.smart} and {@code events.notice}: asynchronous events completed
     * to the host (the notices are the Namespace Attribute Changed events).
     */
    public void putStatistics(Map<String, Long> m) {
        m.put("events.error", postedByType.get(TYPE_ERROR_STATUS));
        m.put("events.smart", postedByType.get(TYPE_SMART_HEALTH));
        m.put("events.notice", postedByType.get(TYPE_NOTICE));
    }

    /** Outstanding AER commands (for tests). */
    public int outstanding() {
        return count;
    }
}
