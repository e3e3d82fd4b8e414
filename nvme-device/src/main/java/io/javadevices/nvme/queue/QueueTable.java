package io.javadevices.nvme.queue;

import io.javadevices.nvme.backend.IoEngines;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.PollingThreads;
import io.javadevices.pci.WorkerPool;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.function.Supplier;

/**
 * The controller's queue table (QEMU hw/nvme {@code n->sq[]} / {@code n->cq[]} with nvme_init_sq /
 * nvme_free_sq): the SQs and CQs by id (0 = admin), their workers (live, and the counters of retired
 * ones), the Doorbell Buffer Config pages and their association with each queue.
 *
 * <p>Workers are built here; the command handler of each I/O queue comes from the factory handed to
 * {@link #startAdmin}, so this package never depends on the command sets.
 *
 * <p>Threads: install/remove and DBBUF configuration run on the admin worker, {@link #startAdmin} and
 * {@link #clear} under the controller's register lock; lookups are lock-free (MMIO thread, workers).
 */
public final class QueueTable {
    /** Stops one worker and waits until it cannot DMA any more; false if a reset stopped {@code admin} too. */
    public interface WorkerStopper {
        boolean stopAndAwait(QueueWorker worker, QueueWorker admin);
    }

    private final QueueWorker.Controller controller;
    private final GuestMemory memory;
    private final int maxQueues;
    private final AtomicReferenceArray<SubmissionQueue> sqs;
    private final AtomicReferenceArray<CompletionQueue> cqs;
    /** The polled doorbell page ({@code doorbells=polled}), or null when doorbells are MMIO callbacks. */
    private final DoorbellPage doorbellPage;
    /** How the workers wait for work: the I/O workers as given, the admin worker its {@link IdlePolicy.Settings#admin}. */
    private final IdlePolicy.Settings idle;
    private final WorkerStopper stopper;
    private final QueueStats retired = new QueueStats();
    private final List<QueueWorker> live = new ArrayList<>();
    private volatile DbbufPages dbbuf;
    private volatile QueueWorker adminWorker;
    private volatile Supplier<? extends CommandHandler> ioHandlers;
    /** Makes each I/O worker's asynchronous engine, or null: I/O queues run synchronously. */
    private volatile IoEngines.Factory ioEngines;
    /** The host's shared polling threads for the I/O queues, or null: this controller's own ({@link #ioPool}). */
    private volatile WorkerPool sharedPool;
    private PollingThreads ownPool; // guarded by live
    /** The thread for I/O commands that would block a polling thread (started by the first such command). */
    private final CommandOffload offload = new CommandOffload("nvme-offload");

    public QueueTable(QueueWorker.Controller controller, int maxQueues, DoorbellPage doorbellPage,
                      IdlePolicy.Settings idle, WorkerStopper stopper) {
        this.controller = controller;
        this.memory = controller.memory();
        this.maxQueues = maxQueues;
        this.sqs = new AtomicReferenceArray<>(maxQueues + 1);
        this.cqs = new AtomicReferenceArray<>(maxQueues + 1);
        this.doorbellPage = doorbellPage;
        this.idle = idle;
        this.stopper = stopper;
    }

    /** Most in-flight slots of one I/O queue: min(SQ size, this). */
    public static final int MAX_IN_FLIGHT = 1024;

    /** Where the I/O workers created from now on get their engine ({@link QueueWorker}, asynchronous I/O). */
    public void ioEngines(IoEngines.Factory engines) {
        this.ioEngines = engines;
    }

    /**
     * The threads the I/O queues run on: the host's ({@code DeviceContext.workers()}), or null for a private
     * pool of {@code availableProcessors} threads made at the first Create I/O SQ. The admin queue never runs
     * there: an admin command may block for long (Format NVM, a namespace created in a pool directory, a
     * synchronous backend's flush) and must not stall the I/O of other controllers sharing those threads; it
     * keeps a thread of its own, and Delete I/O SQ may wait on it for an I/O queue to stop.
     */
    public void workers(WorkerPool pool) {
        this.sharedPool = pool;
    }

    private WorkerPool ioPool() {
        WorkerPool pool = sharedPool;
        if (pool != null) {
            return pool;
        }
        synchronized (live) {
            if (ownPool == null) {
                ownPool = PollingThreads.create("nvme-poll", Runtime.getRuntime().availableProcessors(), null);
            }
            return ownPool;
        }
    }

    /** The controller's thread for I/O commands that would block a polling thread ({@link CommandOffload}). */
    public CommandOffload offload() {
        return offload;
    }

    /** The controller closed (its workers ended): ends the private pool's threads and the offload thread. */
    public void close() {
        offload.close();
        PollingThreads pool;
        synchronized (live) {
            pool = ownPool;
            ownPool = null;
        }
        if (pool != null) {
            pool.close();
        }
    }

    /** Highest I/O queue id. */
    public int maxQueues() {
        return maxQueues;
    }

    public SubmissionQueue submissionQueue(int qid) {
        return qid >= 0 && qid <= maxQueues ? sqs.get(qid) : null;
    }

    public CompletionQueue completionQueue(int qid) {
        return qid >= 0 && qid <= maxQueues ? cqs.get(qid) : null;
    }

    /** The polled doorbell page, or null. */
    public DoorbellPage doorbellPage() {
        return doorbellPage;
    }

    public boolean doorbellBufferActive() {
        return dbbuf != null;
    }

    // ------------------------------------------------------------------ enable / disable

    /**
     * CC.EN = 1 (NVMe 1.4 §7.6.1): installs the admin queue pair and starts its worker; I/O queues created
     * from now on get their handler from {@code io} (a snapshot of this enable's page size and MDTS).
     */
    public void startAdmin(SubmissionQueue adminSq, CommandHandler admin, Supplier<? extends CommandHandler> io) {
        ioHandlers = io;
        CompletionQueue adminCq = adminSq.cq;
        if (doorbellPage != null) {
            doorbellPage.clearQueue(0);
            adminSq.usePolled(doorbellPage);
            adminCq.usePolled(doorbellPage);
        }
        cqs.set(0, adminCq);
        sqs.set(0, adminSq);
        QueueWorker worker = new QueueWorker(controller, adminSq, admin, idle.admin());
        synchronized (live) {
            live.add(worker);
        }
        adminWorker = worker;
        worker.start();
    }

    /** No worker can DMA any more (after a disable): forgets every queue, the DBBUF pages and the polled page. */
    public void clear() {
        liveWorkers().forEach(this::retire);
        for (int qid = 0; qid <= maxQueues; qid++) {
            sqs.set(qid, null);
            cqs.set(qid, null);
        }
        adminWorker = null;
        dbbuf = null;
        if (doorbellPage != null) {
            doorbellPage.clearAll();
        }
    }

    // ------------------------------------------------------------------ create / delete (admin worker)

    /** Installs an I/O CQ (already validated by the admin command). */
    public void installCompletionQueue(CompletionQueue cq) {
        if (doorbellPage != null) {
            doorbellPage.clearQueue(cq.qid); // no stale head from an earlier queue with this id
            cq.usePolled(doorbellPage);
        }
        DbbufPages pages = dbbuf;
        if (pages != null) {
            associate(cq, pages);
        }
        cqs.set(cq.qid, cq);
    }

    /** Installs an I/O SQ and starts its worker. */
    public void installSubmissionQueue(SubmissionQueue sq) {
        DbbufPages pages = dbbuf;
        if (pages != null) {
            sq.useShadow(new ShadowDoorbell(memory, pages.shadow(), pages.eventIdx(), sq.qid, false));
        }
        if (doorbellPage != null) {
            doorbellPage.clearQueue(sq.qid); // a stale tail must not look like new submissions
            sq.usePolled(doorbellPage);
        }
        sq.cq.attach(sq);
        sqs.set(sq.qid, sq);
        IoEngines.Factory engines = ioEngines;
        // No engine (io-engine=sync): the worker runs on a thread of its own (see QueueWorker), not on the pool.
        QueueWorker worker = new QueueWorker(controller, sq, ioHandlers.get(), idle, engines,
                Math.min(sq.size, MAX_IN_FLIGHT), engines == null ? null : ioPool(), offload);
        synchronized (live) {
            live.add(worker);
        }
        worker.start();
    }

    /** Delete I/O SQ (admin worker): returns once the SQ's worker ended (see {@link WorkerStopper}). */
    public void removeSubmissionQueue(SubmissionQueue sq) {
        QueueWorker worker = sq.worker();
        QueueWorker admin = adminWorker;
        if (worker != null) {
            if (admin == null || !stopper.stopAndAwait(worker, admin)) {
                return; // a reset stopped the admin worker too: the reset deletes the queue
            }
            retire(worker);
        }
        sqs.compareAndSet(sq.qid, sq, null);
        sq.cq.detach(sq);
    }

    public void removeCompletionQueue(CompletionQueue cq) {
        cqs.compareAndSet(cq.qid, cq, null);
    }

    // ------------------------------------------------------------------ DBBUF

    /**
     * Doorbell Buffer Config (7Ch) accepted: replaces any previous pages, seeds them with the current
     * tails and heads ({@link ShadowSeeding}, admin slots included as QEMU nvme_dbbuf_config does) and
     * associates every existing I/O queue; wakes the workers so that entries already in the shadow
     * slots are picked up. The old pages are never touched again.
     */
    public void configureDoorbellBuffer(long shadowPage, long eventIdxPage) {
        DbbufPages pages = new DbbufPages(shadowPage, eventIdxPage);
        dbbuf = pages;
        ShadowSeeding.admin(memory, sqs.get(0), cqs.get(0), pages);
        for (int qid = 1; qid <= maxQueues; qid++) {
            CompletionQueue cq = cqs.get(qid);
            if (cq != null) {
                ShadowSeeding.completion(memory, cq, shadowPage);
                associate(cq, pages);
            }
        }
        for (int qid = 1; qid <= maxQueues; qid++) {
            SubmissionQueue sq = sqs.get(qid);
            if (sq != null) {
                ShadowDoorbell next = new ShadowDoorbell(memory, shadowPage, eventIdxPage, qid, false);
                ShadowSeeding.submission(memory, sq, next);
                sq.useShadow(next);
                QueueWorker w = sq.worker();
                if (w != null) {
                    w.kick();
                }
            }
        }
    }

    /** An accepted admin MMIO doorbell is mirrored into DBBUF slot 0 (QEMU nvme_process_db). */
    public void mirrorAdminDoorbell(int qid, boolean completion, int value) {
        // A DMA write: none while Bus Master Enable is clear (PCI 3.0 §6.2.2; QEMU's pci_dma_write is dropped then).
        if (qid == 0 && controller.busMasterEnabled()) {
            ShadowSeeding.mirrorAdmin(memory, dbbuf, qid, completion, value);
        }
    }

    private void associate(CompletionQueue cq, DbbufPages pages) {
        ShadowDoorbell sh = new ShadowDoorbell(memory, pages.shadow(), pages.eventIdx(), cq.qid, true);
        // CQ EventIdx "never" (0xFFFF, as SPDK): the host MMIOs the CQ head at most once per wrap; a poster
        // blocked on a full CQ re-arms it with the known head (QEMU fa5db2aa168b). An unreachable slot leaves
        // the CQ on its MMIO or polled head.
        cq.useShadow(sh, 0xFFFF);
    }

    // ------------------------------------------------------------------ workers

    public List<QueueWorker> liveWorkers() {
        synchronized (live) {
            return new ArrayList<>(live);
        }
    }

    private void retire(QueueWorker worker) {
        synchronized (live) {
            if (live.remove(worker)) {
                worker.stats().addTo(retired);
            }
        }
    }

    /** Wakes every worker (Bus Master Enable set: workers parked without DMA may go on). */
    public void kickAll() {
        synchronized (live) {
            for (QueueWorker w : live) {
                w.kick();
            }
        }
    }

    /** Wakes the admin worker (an asynchronous event to complete). */
    public void kickAdmin() {
        QueueWorker admin = adminWorker;
        if (admin != null) {
            admin.kick();
        }
    }

    /** Counters of every worker so far, live and retired. */
    public QueueStats totals() {
        QueueStats total = new QueueStats();
        synchronized (live) {
            retired.addTo(total);
            for (QueueWorker w : live) {
                w.stats().addTo(total);
            }
        }
        return total;
    }

    /** Number of I/O SQs installed. */
    public int ioQueueCount() {
        int n = 0;
        for (int qid = 1; qid <= maxQueues; qid++) {
            if (sqs.get(qid) != null) {
                n++;
            }
        }
        return n;
    }
}
