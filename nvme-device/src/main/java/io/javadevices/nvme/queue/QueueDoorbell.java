package io.javadevices.nvme.queue;

import io.javadevices.pci.GuestMemoryException;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * One doorbell of one queue (the SQ tail or the CQ head) and the {@link DoorbellSource} it is currently read
 * from. The MMIO value is always kept (a late MMIO write still wakes the worker, and Doorbell Buffer Config
 * seeds new shadow slots from what the controller knows); the polled page, when there is one, replaces it as
 * the base source; a shadow slot overrides the base until it is replaced or becomes unreachable.
 *
 * <p>Threads: {@link #storeMmio} runs on the MMIO thread; {@link #usePolled} and {@link #useShadow} on the
 * thread that creates or reconfigures queues (the admin worker, or CC.EN for the admin queue), serialised by
 * this object's monitor; {@link #load} on the queue's owner; {@link #peek}, {@link #known} and
 * {@link #publish} on any thread. A switch to the fallback is a compare-and-set, so a worker that finds its
 * shadow page gone can never undo a new shadow installed meanwhile by Doorbell Buffer Config.
 */
final class QueueDoorbell {
    private static final VarHandle SOURCE;

    static {
        try {
            SOURCE = MethodHandles.lookup().findVarHandle(QueueDoorbell.class, "source", DoorbellSource.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final int qid;
    private final int entries;
    private final boolean completion;
    private final DoorbellSource.Mmio mmio = new DoorbellSource.Mmio();
    /** The source without shadow: MMIO or the polled page. Guarded by this. */
    private DoorbellSource unshadowed = mmio;
    private volatile DoorbellSource source = mmio;

    QueueDoorbell(int qid, int entries, boolean completion) {
        this.qid = qid;
        this.entries = entries;
        this.completion = completion;
    }

    void storeMmio(int value) {
        mmio.store(value);
    }

    int mmio() {
        return mmio.value();
    }

    /** Read the doorbell from the polled page from now on (before the queue is used). */
    synchronized void usePolled(DoorbellPage page) {
        unshadowed = new DoorbellSource.Polled(page, qid, entries, completion);
        DoorbellSource current = source;
        source = current instanceof DoorbellSource.Shadow sh
                ? new DoorbellSource.Shadow(sh.slot(), mmio, unshadowed, qid, entries, completion)
                : unshadowed;
    }

    /** Read the doorbell from this shadow slot from now on (replacing any earlier one). */
    synchronized void useShadow(ShadowDoorbell slot) {
        source = new DoorbellSource.Shadow(slot, mmio, unshadowed, qid, entries, completion);
    }

    boolean shadowed() {
        return source instanceof DoorbellSource.Shadow;
    }

    boolean polled() {
        return source.fallback() instanceof DoorbellSource.Polled;
    }

    /** Owner: the current valid value or {@link DoorbellSource#INVALID}; falls back if the shadow page is gone. */
    int load(QueueStats stats, DoorbellSource.Rejects rejects) {
        while (true) {
            DoorbellSource s = source;
            try {
                return s.load(stats, rejects);
            } catch (GuestMemoryException e) {
                fallBack(s); // only a shadow throws, and its fallback never does: at most one more turn
            }
        }
    }

    /** The current valid value or {@link DoorbellSource#INVALID}, without side effects (INTx level checks). */
    int peek() {
        return source.peek();
    }

    /**
     * The value the controller works towards, for seeding new shadow slots: the current source if it holds a
     * valid value, else the source it falls back to, else the MMIO value.
     */
    int known() {
        DoorbellSource s = source;
        while (true) {
            int v = s.peek();
            if (v != DoorbellSource.INVALID) {
                return v;
            }
            DoorbellSource next = s.fallback();
            if (next == s) {
                return mmio.value();
            }
            s = next;
        }
    }

    /**
     * Publishes EventIdx if a shadow is in use; true if it was published, false if none or it became unreachable.
     * An SQ publishes only on its worker. A CQ may also publish from another poster (INTx assertion): a fallback
     * there may hand over a head older than the newest one, which only makes the controller wait for more room.
     */
    boolean publish(int eventIdx) {
        DoorbellSource s = source;
        if (!(s instanceof DoorbellSource.Shadow)) {
            return false;
        }
        try {
            s.publish(eventIdx);
            return true;
        } catch (GuestMemoryException e) {
            fallBack(s);
            return false;
        }
    }

    private void fallBack(DoorbellSource unreachable) {
        if (unreachable instanceof DoorbellSource.Shadow sh) {
            sh.handOver();
        }
        SOURCE.compareAndSet(this, unreachable, unreachable.fallback());
    }
}
