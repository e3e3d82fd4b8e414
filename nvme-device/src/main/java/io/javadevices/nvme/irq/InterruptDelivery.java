package io.javadevices.nvme.irq;

import io.javadevices.nvme.admin.FeatureState;
import io.javadevices.nvme.queue.CompletionQueue;
import io.javadevices.nvme.queue.QueueStats;
import io.javadevices.nvme.queue.QueueTable;
import io.javadevices.pci.ConfigSpace;
import io.javadevices.pci.InterruptSink;

/**
 * Interrupt delivery of the controller (QEMU hw/nvme nvme_irq_check / nvme_irq_assert / nvme_irq_deassert
 * and nvme_post_cqes' coalescing): Interrupt Coalescing (Set Features 08h, NVMe 1.4 §5.21.1.8), MSI-X
 * vectors, and INTx with the INTMS/INTMC mask (§3.1.3, §3.1.4; INTx is level-triggered and follows
 * "some CQ holds unconsumed entries").
 *
 * <p>Threads: workers call {@link #completionsPosted} / {@link #flushInterrupts}; the MMIO thread writes the
 * mask and calls {@link #updateIntx} after a CQ head doorbell. INTx decisions are made under one lock so
 * that a worker's assert cannot fall between another thread's check and its deassert. MSI-X takes no lock.
 */
public final class InterruptDelivery {
    private final InterruptSink sink;
    private final ConfigSpace config;
    private final FeatureState features;
    private final QueueTable queues;
    /** Serialises INTx assert/deassert decisions (workers raise, the MMIO thread or a polled worker lowers). */
    private final Object intxLock = new Object();
    /** INTMS: bit 0 masks the single INTx "vector" (MSI-X ignores it, §3.1.3). */
    private volatile int mask;
    private volatile boolean intxAsserted;

    public InterruptDelivery(InterruptSink sink, ConfigSpace config, FeatureState features, QueueTable queues) {
        this.sink = sink;
        this.config = config;
        this.features = features;
        this.queues = queues;
    }

    /** A batch of {@code posted} completions was written to {@code cq}: interrupt now or once the threshold is reached. */
    public void completionsPosted(CompletionQueue cq, int posted, QueueStats stats) {
        if (!cq.interruptsEnabled()) {
            return;
        }
        int threshold = cq.qid == 0 ? 1 : features.coalescingThreshold(cq.vector);
        if (threshold <= 1) {
            raise(cq, stats);
            return;
        }
        if (cq.addPendingInterrupts(posted, threshold)) {
            raise(cq, stats);
        }
    }

    /** The queue went idle: a coalesced interrupt still pending is raised now. */
    public void flushInterrupts(CompletionQueue cq, QueueStats stats) {
        if (!cq.interruptsEnabled()) {
            return;
        }
        if (cq.takePendingInterrupts()) {
            raise(cq, stats);
        }
    }

    /** MSI-X vector of the CQ, or INTx (honouring INTMS bit 0) when MSI-X is disabled. */
    private void raise(CompletionQueue cq, QueueStats stats) {
        stats.countInterrupt();
        if (config.isMsixEnabled()) {
            sink.signalMsix(cq.vector);
        } else if ((mask & 1) == 0 && !config.isIntxDisabled()) {
            assertIntx(cq);
        }
    }

    private void assertIntx(CompletionQueue cq) {
        synchronized (intxLock) {
            // INTx is level-triggered and deasserted on the CQ head doorbell: with a shadow slot, make the host
            // MMIO the head once it has consumed the last posted entry (nvme_dbbuf_need_event crosses it). An
            // unmapped page falls back to MMIO heads, which deassert anyway.
            cq.publishEventIdx(cq.tail() == 0 ? cq.size - 1 : cq.tail() - 1);
            intxAsserted = true;
            sink.setIntx(true);
        }
    }

    /**
     * INTx is level-triggered: deassert once every CQ is consumed (head from the shadow or polled page
     * if active).
     */
    public void updateIntx() {
        if (!intxAsserted || config.isMsixEnabled()) {
            return;
        }
        synchronized (intxLock) {
            for (int qid = 0; qid <= queues.maxQueues(); qid++) {
                CompletionQueue cq = queues.completionQueue(qid);
                if (cq != null && cq.hostHead() != cq.tail()) {
                    return;
                }
            }
            intxAsserted = false;
            sink.setIntx(false);
        }
    }

    /** INTMS read (and INTMC read: the same mask, §3.1.4). */
    public int mask() {
        return mask;
    }

    /** INTMS write: 1 bits mask. */
    public void maskSet(int bits) {
        mask |= bits;
    }

    /** INTMC write: 1 bits unmask; unmasked with completions pending, INTx is asserted again. */
    public void maskClear(int bits) {
        mask &= ~bits;
        if ((mask & 1) == 0 && !config.isMsixEnabled()) {
            for (int qid = 0; qid <= queues.maxQueues(); qid++) {
                CompletionQueue cq = queues.completionQueue(qid);
                if (cq != null && cq.interruptsEnabled() && cq.hostHead() != cq.tail()) {
                    intxAsserted = true;
                    sink.setIntx(true);
                    break;
                }
            }
        }
    }

    /** Controller reset: INTMS = 0. */
    public void resetMask() {
        mask = 0;
    }

    /** The queues are gone (controller disabled): INTx must not stay asserted. */
    public void deassertIntx() {
        if (intxAsserted) {
            intxAsserted = false;
            sink.setIntx(false);
        }
    }
}
