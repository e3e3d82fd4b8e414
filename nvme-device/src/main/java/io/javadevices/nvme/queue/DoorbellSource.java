package io.javadevices.nvme.queue;

import io.javadevices.nvme.Nvme;
import io.javadevices.pci.GuestMemoryException;

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
        Rejects IGNORE = (qid, value) -> {
        };

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

    /** BAR0 doorbell writes. The value is stored by the MMIO thread after validation. */
    final class Mmio implements DoorbellSource {
        private volatile int value;

        /** MMIO thread: stores a doorbell write already checked with {@link Nvme#validDoorbell}. */
        void store(int v) {
            value = v;
        }

        int value() {
            return value;
        }

        @Override
        public int load(QueueStats stats, Rejects rejects) {
            return value;
        }

        @Override
        public int peek() {
            return value;
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
            int v = slot.load();
            boolean valid = Nvme.validDoorbell(v, entries);
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
    }
}
