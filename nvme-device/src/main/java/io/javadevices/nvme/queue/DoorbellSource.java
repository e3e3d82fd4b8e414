package io.javadevices.nvme.queue;

import io.javadevices.nvme.spec.Nvme;
import io.javadevices.pci.GuestMemoryException;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * Where a queue reads the value the host last gave one of its doorbells (SQ tail, NVMe 1.4 §3.1.10; CQ head,
 * §3.1.11). Each queue has exactly one current source, so "shadow, polled or MMIO?" is decided here and
 * nowhere else:
 * <ul>
 * <li>{@link Mmio}: the last value written through BAR0 (validated by the MMIO path before it is stored);
 * <li>{@link Polled}: BAR0's doorbell page mapped into the guest ({@code doorbells=polled}), read directly;
 * <li>{@link Shadow}: the Doorbell Buffer Config shadow slot (Doorbell Buffer Config, NVMe 1.3 §5.7), authoritative while DBBUF is
 *     active: an MMIO doorbell is then only a wake-up, so a late posted MMIO write carrying an older value
 *     can never make the tail regress (QEMU {@code nvme_process_db} ignores the written value the same way).
 * </ul>
 * Every value read from guest-writable memory is validated with {@link Nvme#validDoorbell}, and a new
 * invalid value is reported once (not once per look). Only a {@code Shadow} has an EventIdx to publish and
 * only it can become unreachable (its page unmapped): {@link #fallback} then names the source the queue
 * continues with (its polled page or MMIO), as QEMU does when {@code pci_dma_read} of the shadow fails.
 *
 * <p>Threads: {@link #load} and {@link #publish} run on the queue's owner (the SQ's worker; for a CQ the
 * poster, under the CQ lock once shared) and keep owner-only change tracking; {@link #peek} is side-effect
 * free and may run on any thread. All three classes are final, so a call site sees at most the two kinds a
 * queue can have (its MMIO or polled source, and a shadow).
 */
sealed interface DoorbellSource permits DoorbellSource.Mmio, DoorbellSource.Polled, DoorbellSource.Shadow {
    /** {@link #load} / {@link #peek} result for a value that is not a valid doorbell for the queue. */
    int INVALID = -1;

    /** Receives each new invalid value a source saw (the worker passes the controller's guest-error path). */
    @FunctionalInterface
    interface Rejects {
        void invalid(int qid, int value);
    }

    /**
     * Owner: the current value, or {@link #INVALID}. A changed valid value is counted in {@code stats}; a
     * new invalid value goes to {@code rejects} once.
     *
     * @throws GuestMemoryException the shadow page became unreachable: switch to {@link #fallback}
     */
    int load(QueueStats stats, Rejects rejects) throws GuestMemoryException;

    /** Any thread, no side effects: the current value, or {@link #INVALID} (also for an unreachable page). */
    int peek();

    /** Publishes EventIdx (release store); a no-op for sources without one. */
    void publish(int eventIdx) throws GuestMemoryException;

    /** The source to use once this one is unreachable (itself if it cannot become unreachable). */
    DoorbellSource fallback();

    /**
     * BAR0 doorbell writes. The value is kept with a count of writes, so that a shadow falling back can tell
     * whether BAR0 was written since it last read its slot ({@link #adopt}).
     */
    final class Mmio implements DoorbellSource {
        private static final VarHandle STAMPED = stampedHandle();

        /** (BAR0 writes so far {@literal <<} 32) | the last value written. */
        private volatile long stamped;

        private static VarHandle stampedHandle() {
            try {
                return MethodHandles.lookup().findVarHandle(Mmio.class, "stamped", long.class);
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(e);
            }
        }

        /** MMIO thread: stores a doorbell write already checked with {@link Nvme#validDoorbell}. */
        void store(int v) {
            long s;
            do {
                s = stamped;
            } while (!STAMPED.compareAndSet(this, s, ((s >>> 32) + 1) << 32 | (v & 0xFFFF_FFFFL)));
        }

        int value() {
            return (int) stamped;
        }

        /** How many BAR0 writes there were so far. */
        int writes() {
            return (int) (stamped >>> 32);
        }

        /**
         * A shadow slot became unreachable: continue from the last value it gave ({@code v}), unless BAR0 was
         * written after that value was read ({@code writes} changed). Without this the MMIO value, stale
         * while the host rang only when {@code nvme_dbbuf_need_event} said so, would make a tail jump back
         * over commands already run, or a head back over entries not yet consumed.
         */
        void adopt(int writes, int v) {
            long s;
            do {
                s = stamped;
                if ((int) (s >>> 32) != writes) {
                    return; // the host wrote BAR0 since: that value is newer
                }
            } while (!STAMPED.compareAndSet(this, s, s & ~0xFFFF_FFFFL | (v & 0xFFFF_FFFFL)));
        }

        @Override
        public int load(QueueStats stats, Rejects rejects) {
            return value();
        }

        @Override
        public int peek() {
            return value();
        }

        @Override
        public void publish(int eventIdx) {
        }

        @Override
        public DoorbellSource fallback() {
            return this;
        }
    }

    /** One doorbell slot of the polled doorbell page ({@link DoorbellPage}). */
    final class Polled implements DoorbellSource {
        private final DoorbellPage page;
        private final int qid;
        private final int entries;
        private final boolean completion;
        private int lastSeen; // owner only

        Polled(DoorbellPage page, int qid, int entries, boolean completion) {
            this.page = page;
            this.qid = qid;
            this.entries = entries;
            this.completion = completion;
        }

        private int raw() {
            return completion ? page.cqHead(qid) : page.sqTail(qid);
        }

        @Override
        public int load(QueueStats stats, Rejects rejects) {
            int v = raw();
            boolean valid = Nvme.validDoorbell(v, entries);
            if (v != lastSeen) {
                lastSeen = v;
                if (!valid) {
                    rejects.invalid(qid, v);
                } else if (!completion) {
                    stats.polledSq++;
                }
            }
            return valid ? v : INVALID;
        }

        @Override
        public int peek() {
            int v = raw();
            return Nvme.validDoorbell(v, entries) ? v : INVALID;
        }

        @Override
        public void publish(int eventIdx) {
        }

        @Override
        public DoorbellSource fallback() {
            return this;
        }
    }

    /** The queue's Doorbell Buffer Config slot pair; {@code fallback} is the source it replaced. */
    final class Shadow implements DoorbellSource {
        private final ShadowDoorbell slot;
        private final Mmio mmio;
        private final DoorbellSource fallback;
        private final int qid;
        private final int entries;
        private final boolean completion;
        private int lastSeen; // owner only
        /** The last valid value read, and the BAR0 write count read just before it. Owner only. */
        private int lastValid;
        private int writesBeforeLastValid;
        private boolean seenValid;

        Shadow(ShadowDoorbell slot, Mmio mmio, DoorbellSource fallback, int qid, int entries, boolean completion) {
            this.slot = slot;
            this.mmio = mmio;
            this.fallback = fallback;
            this.qid = qid;
            this.entries = entries;
            this.completion = completion;
        }

        ShadowDoorbell slot() {
            return slot;
        }

        @Override
        public int load(QueueStats stats, Rejects rejects) throws GuestMemoryException {
            int writes = mmio.writes(); // before the slot: a BAR0 write after this point is newer than v
            int v = slot.load();
            boolean valid = Nvme.validDoorbell(v, entries);
            if (valid) {
                lastValid = v;
                writesBeforeLastValid = writes;
                seenValid = true;
            }
            if (v != lastSeen) {
                lastSeen = v;
                if (!valid) {
                    rejects.invalid(qid, v);
                } else if (v != mmio.value()) { // the update reached us through the shadow slot only
                    if (completion) {
                        stats.shadowCq++;
                    } else {
                        stats.shadowSq++;
                    }
                }
            }
            return valid ? v : INVALID;
        }

        @Override
        public int peek() {
            try {
                int v = slot.load();
                return Nvme.validDoorbell(v, entries) ? v : INVALID;
            } catch (GuestMemoryException e) {
                return INVALID;
            }
        }

        @Override
        public void publish(int eventIdx) throws GuestMemoryException {
            slot.publish(eventIdx);
        }

        @Override
        public DoorbellSource fallback() {
            return fallback;
        }

        /** Owner, when this slot became unreachable: hand the last value it gave to BAR0 ({@link Mmio#adopt}). */
        void handOver() {
            if (seenValid && fallback == mmio) {
                mmio.adopt(writesBeforeLastValid, lastValid);
            }
        }
    }
}
