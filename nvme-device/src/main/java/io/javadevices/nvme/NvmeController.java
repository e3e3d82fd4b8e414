package io.javadevices.nvme;

import io.javadevices.nvme.admin.AdminCommandDispatcher;
import io.javadevices.nvme.admin.AsyncEvents;
import io.javadevices.nvme.admin.FeatureState;
import io.javadevices.nvme.io.IoCommandHandler;
import io.javadevices.nvme.queue.CompletionQueue;
import io.javadevices.nvme.queue.QueueStats;
import io.javadevices.nvme.queue.QueueWorker;
import io.javadevices.nvme.queue.DoorbellPage;
import io.javadevices.nvme.queue.ShadowDoorbell;
import io.javadevices.nvme.queue.SubmissionQueue;
import io.javadevices.pci.Bar;
import io.javadevices.pci.ConfigSpace;
import io.javadevices.pci.DeviceContext;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.InterruptSink;
import io.javadevices.pci.MmioHandler;
import io.javadevices.pci.MsixTable;
import io.javadevices.pci.PciDevice;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * An NVMe 1.4 controller as a {@link PciDevice}: PCI identity, BAR0 registers and doorbells, the queue
 * table, controller enable/disable/shutdown/reset and interrupt delivery. Commands are executed by
 * {@link QueueWorker} threads (one per SQ): admin commands by {@link AdminCommandDispatcher}, I/O by
 * {@link IoCommandHandler}.
 *
 * <p>PCI: vendor 4E58h device 4A56h, class 01/08/02; BAR0 64-bit 16 KiB (registers at 0, doorbells at
 * 1000h, CAP.DSTRD = 0); MSI-X with queues+1 vectors, table and PBA in BAR4; PCIe and PM capabilities.
 * With {@code doorbells=polled} the doorbell page [1000h, 2000h) is a {@link DoorbellPage} the guest
 * writes directly and the workers poll (asked from the host as {@link io.javadevices.pci.DirectBarMemory}).
 *
 * <p>Threads: the host calls the BAR handlers and {@link #reset()} one at a time (register state changes
 * are synchronized on this object); workers never take this lock. A controller disable stops and joins
 * every worker inside the CC write, so no DMA follows it.
 */
public final class NvmeController implements PciDevice, QueueWorker.Host {
    public static final int VENDOR_ID = 0x4E58;
    public static final int DEVICE_ID = 0x4A56;
    /** MSI-X table at 0 and PBA at 0x2000 of BAR4 (16 KiB, room for 512 vectors' table). */
    public static final int MSIX_BAR = 4, MSIX_TABLE_OFFSET = 0, MSIX_PBA_OFFSET = 0x2000;
    /** CAP.MPSMAX: host pages up to 64 KiB. */
    public static final int MPS_MAX = 4;

    private static final System.Logger LOG = System.getLogger(NvmeController.class.getName());

    private final NvmeOptions options;
    private final GuestMemory memory;
    private final InterruptSink interrupts;
    private final List<Namespace> namespaces;
    private final MsixTable msix;
    private final ConfigSpace config;
    private final int maxQueues;
    private final long cap;
    private final AtomicReferenceArray<SubmissionQueue> sqs;
    private final AtomicReferenceArray<CompletionQueue> cqs;
    private final FeatureState features;
    private final ErrorLog errorLog = new ErrorLog();
    private final AsyncEvents asyncEvents = new AsyncEvents();
    /** The polled doorbell page ({@code doorbells=polled}), or null when doorbells are MMIO callbacks. */
    private final DoorbellPage doorbellPage;
    /** Serialises INTx assert/deassert decisions (workers raise, the MMIO thread or a polled worker lowers). */
    private final Object intxLock = new Object();

    // Registers (NVMe 1.4 §3.1). Written by the host thread under this lock; volatile for workers.
    private volatile int cc;
    private volatile int csts;
    private volatile int aqa;
    private volatile long asq;
    private volatile long acq;
    private volatile int intms;
    private volatile int pageSize = 4096;
    private volatile boolean shutdown;
    private volatile boolean intxAsserted;
    private volatile DbbufPages dbbuf;
    private volatile QueueWorker adminWorker;
    /** Set by a worker that hit a fatal condition; reads of CSTS include CFS until the next disable. */
    private volatile boolean fatalStatus;

    // Statistics. MMIO counters are plain fields written only by the (single, serialised) MMIO thread;
    // worker counters live in each worker's QueueStats; stopped workers are folded into `retired`.
    private long mmioSq, mmioCq, resets;
    private final QueueStats retired = new QueueStats();
    private final List<QueueWorker> live = new ArrayList<>();
    private volatile boolean closed;

    /** The two DBBUF pages (PRP1 = shadow doorbells, PRP2 = EventIdx). */
    public record DbbufPages(long shadow, long eventIdx) {
    }

    public NvmeController(NvmeOptions options, DeviceContext context) {
        this.options = options;
        this.memory = context.memory();
        this.interrupts = context.interrupts();
        this.maxQueues = options.queues();
        this.doorbellPage = options.polledDoorbells() ? new DoorbellPage(context.barMemory()
                .share(0, Nvme.DOORBELL_BASE, DoorbellPage.SIZE)
                .orElseThrow(() -> new IllegalArgumentException("doorbells=polled needs a host that maps BAR memory"
                        + " into the guest (DirectBarMemory); this host offers none"))) : null;
        List<Namespace> list = new ArrayList<>();
        try {
            for (NvmeOptions.NamespaceSpec spec : options.namespaces()) {
                list.add(new Namespace(list.size() + 1, spec.open(), spec.lbaSize()));
            }
        } catch (RuntimeException e) {
            list.forEach(ns -> ns.backend().close());
            throw e;
        }
        this.namespaces = List.copyOf(list);
        this.features = new FeatureState(maxQueues + 1, list.stream().anyMatch(ns -> ns.backend().volatileWriteCache()));
        this.sqs = new AtomicReferenceArray<>(maxQueues + 1);
        this.cqs = new AtomicReferenceArray<>(maxQueues + 1);
        // CAP (NVMe 1.4 Figure 68): MQES, CQR=1, AMS=0, TO=0xF (7.5 s), DSTRD=0, CSS bit 37 (NVM), MPSMIN=0, MPSMAX.
        this.cap = (options.mqes() & 0xFFFFL) | 1L << 16 | 0xFL << 24 | 1L << 37 | (long) MPS_MAX << 52;
        this.msix = new MsixTable(maxQueues + 1);
        this.config = ConfigSpace.builder()
                .vendorId(VENDOR_ID).deviceId(DEVICE_ID).subsystemVendorId(VENDOR_ID).subsystemId(DEVICE_ID)
                .revision(1)
                .classCode(0x01, 0x08, 0x02)
                .interruptPin(1)
                .bar(Bar.memory64(0, Nvme.BAR0_SIZE, new Registers()))
                .bar(Bar.memory64(MSIX_BAR, 16 * 1024, msix.asBarHandler(MSIX_TABLE_OFFSET, MSIX_PBA_OFFSET)))
                .msix(maxQueues + 1, MSIX_BAR, MSIX_TABLE_OFFSET, MSIX_BAR, MSIX_PBA_OFFSET)
                .pciExpress()
                .powerManagement()
                .build();
        config.addFunctionLevelResetListener(this::functionLevelReset);
        config.addWriteListener((offset, length) -> {
            if (offset <= 0x04 && offset + length > 0x04 && config.isBusMasterEnabled()) {
                kickAllWorkers(); // Bus Master Enable set: workers parked without DMA may go on
            }
        });
    }

    // ------------------------------------------------------------------ accessors used by command handlers

    public NvmeOptions options() {
        return options;
    }

    @Override
    public GuestMemory memory() {
        return memory;
    }

    public List<Namespace> namespaces() {
        return namespaces;
    }

    /** Active namespace {@code nsid}, or null. */
    public Namespace namespace(int nsid) {
        return nsid >= 1 && nsid <= namespaces.size() ? namespaces.get(nsid - 1) : null;
    }

    /** Host memory page size from CC.MPS (bytes). */
    public int pageSize() {
        return pageSize;
    }

    /** MDTS in bytes: 2^mdts × CAP.MPSMIN page (4 KiB). */
    public long maxTransferBytes() {
        return 4096L << options.mdts();
    }

    public int maxIoQueues() {
        return maxQueues;
    }

    public int msixVectors() {
        return msix.vectors();
    }

    public MsixTable msixTable() {
        return msix;
    }

    public ErrorLog errorLog() {
        return errorLog;
    }

    public FeatureState features() {
        return features;
    }

    public AsyncEvents asyncEvents() {
        return asyncEvents;
    }

    public SubmissionQueue submissionQueue(int qid) {
        return qid >= 0 && qid <= maxQueues ? sqs.get(qid) : null;
    }

    public CompletionQueue completionQueue(int qid) {
        return qid >= 0 && qid <= maxQueues ? cqs.get(qid) : null;
    }

    public boolean dbbufActive() {
        return dbbuf != null;
    }

    @Override
    public ConfigSpace config() {
        return config;
    }

    // ------------------------------------------------------------------ queue management (admin worker)

    /** Installs an I/O CQ (already validated by the admin command). */
    public void installCompletionQueue(CompletionQueue cq) {
        if (doorbellPage != null) {
            doorbellPage.clearQueue(cq.qid); // no stale head from an earlier queue with this id
            cq.polled = doorbellPage;
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
            sq.shadow = new ShadowDoorbell(memory, pages.shadow(), pages.eventIdx(), sq.qid, false);
        }
        if (doorbellPage != null) {
            doorbellPage.clearQueue(sq.qid); // a stale tail must not look like new submissions
            sq.polled = doorbellPage;
        }
        sq.cq.attach(sq);
        sqs.set(sq.qid, sq);
        QueueWorker worker = new QueueWorker(this, sq, new IoCommandHandler(this), options.idle());
        synchronized (live) {
            live.add(worker);
        }
        worker.start();
    }

    /** Stops an I/O SQ's worker (commands in progress finish) and removes the queue. */
    public void removeSubmissionQueue(SubmissionQueue sq) {
        QueueWorker worker = sq.worker();
        if (worker != null) {
            worker.stopAndJoin();
            retire(worker);
        }
        sqs.compareAndSet(sq.qid, sq, null);
        sq.cq.detach(sq);
    }

    public void removeCompletionQueue(CompletionQueue cq) {
        cqs.compareAndSet(cq.qid, cq, null);
    }

    private void retire(QueueWorker worker) {
        synchronized (live) {
            if (live.remove(worker)) {
                worker.stats().addTo(retired);
            }
        }
    }

    /**
     * Doorbell Buffer Config (0x7C) accepted: replaces any previous pages and associates every existing
     * I/O queue (never the admin queue, dbbuf.md §1.5); wakes the workers so that entries already in
     * the shadow slots are picked up (checklist 14). The old pages are never touched again.
     */
    public void configureDoorbellBuffer(long shadowPage, long eventIdxPage) {
        DbbufPages pages = new DbbufPages(shadowPage, eventIdxPage);
        dbbuf = pages;
        for (int qid = 1; qid <= maxQueues; qid++) {
            CompletionQueue cq = cqs.get(qid);
            if (cq != null) {
                associate(cq, pages);
            }
        }
        for (int qid = 1; qid <= maxQueues; qid++) {
            SubmissionQueue sq = sqs.get(qid);
            if (sq != null) {
                sq.shadow = new ShadowDoorbell(memory, shadowPage, eventIdxPage, qid, false);
                QueueWorker w = sq.worker();
                if (w != null) {
                    w.kick();
                }
            }
        }
    }

    private void associate(CompletionQueue cq, DbbufPages pages) {
        ShadowDoorbell sh = new ShadowDoorbell(memory, pages.shadow(), pages.eventIdx(), cq.qid, true);
        try {
            // CQ EventIdx "never" (0xFFFF, as SPDK): the host MMIOs the CQ head at most once per wrap; a
            // poster blocked on a full CQ re-arms it with the known head (dbbuf.md §5.5).
            sh.publish(0xFFFF);
        } catch (Exception e) {
            return;
        }
        cq.shadow = sh;
    }

    // ------------------------------------------------------------------ QueueWorker.Host

    @Override
    public boolean busMasterEnabled() {
        return config.isBusMasterEnabled();
    }

    private void kickAllWorkers() {
        synchronized (live) {
            for (QueueWorker w : live) {
                w.kick();
            }
        }
    }

    @Override
    public void completionsPosted(CompletionQueue cq, int posted, QueueStats stats) {
        if (!cq.interruptsEnabled) {
            return;
        }
        int threshold = cq.qid == 0 ? 1 : features.coalescingThreshold(cq.vector);
        if (threshold <= 1) {
            raise(cq, stats);
            return;
        }
        boolean fire;
        if (cq.shared) {
            synchronized (cq) {
                fire = cq.addPendingInterrupts(posted, threshold);
            }
        } else {
            fire = cq.addPendingInterrupts(posted, threshold);
        }
        if (fire) {
            raise(cq, stats);
        }
    }

    @Override
    public void flushInterrupts(CompletionQueue cq, QueueStats stats) {
        if (!cq.interruptsEnabled) {
            return;
        }
        boolean fire;
        if (cq.shared) {
            synchronized (cq) {
                fire = cq.takePendingInterrupts();
            }
        } else {
            fire = cq.takePendingInterrupts();
        }
        if (fire) {
            raise(cq, stats);
        }
    }

    /** MSI-X vector of the CQ, or INTx (honouring INTMS bit 0) when MSI-X is disabled. */
    private void raise(CompletionQueue cq, QueueStats stats) {
        stats.interrupts++;
        if (config.isMsixEnabled()) {
            interrupts.signalMsix(cq.vector);
        } else if ((intms & 1) == 0 && !config.isIntxDisabled()) {
            assertIntx(cq);
        }
    }

    private void assertIntx(CompletionQueue cq) {
        synchronized (intxLock) {
            ShadowDoorbell sh = cq.shadow;
            if (sh != null) {
                // INTx is level-triggered and deasserted on the CQ head doorbell: make the host MMIO the
                // head once it has consumed the last posted entry (checklist 29).
                try {
                    sh.publish(cq.tail() == 0 ? cq.size - 1 : cq.tail() - 1);
                } catch (Exception ignored) {
                    // page unmapped: the host's MMIO doorbells still deassert
                }
            }
            intxAsserted = true;
            interrupts.setIntx(true);
        }
    }

    /**
     * INTx is level-triggered: deassert once every CQ is consumed (head from the shadow or polled page
     * if active). Under {@link #intxLock} so that a worker's assert can't fall between the check and the
     * deassert.
     */
    private void updateIntx() {
        if (!intxAsserted || config.isMsixEnabled()) {
            return;
        }
        synchronized (intxLock) {
            for (int qid = 0; qid <= maxQueues; qid++) {
                CompletionQueue cq = cqs.get(qid);
                if (cq != null && cq.hostHead() != cq.tail()) {
                    return;
                }
            }
            intxAsserted = false;
            interrupts.setIntx(false);
        }
    }

    @Override
    public void polledIdle() {
        updateIntx(); // with polled doorbells no CQ head write reaches the MMIO path
    }

    @Override
    public void invalidDoorbell(int qid, int value) {
        asyncEvents.raise(AsyncEvents.INVALID_DOORBELL_VALUE);
        kickAdmin();
    }

    @Override
    public void fatal(String why) {
        LOG.log(System.Logger.Level.WARNING, "controller fatal status: {0}", why);
        fatalStatus = true; // the host sees CSTS.CFS and resets the controller
    }

    @Override
    public void commandFailed(int sqid, int cid, Throwable t) {
        LOG.log(System.Logger.Level.WARNING, "command sq " + sqid + " cid " + cid + " failed: completed with Internal Error", t);
        errorLog.record(sqid, cid, Status.INTERNAL_ERROR, 0, 0);
    }

    private void kickAdmin() {
        QueueWorker admin = adminWorker;
        if (admin != null) {
            admin.kick();
        }
    }

    // ------------------------------------------------------------------ registers

    /** BAR0: controller registers below 1000h, doorbells from 1000h. Reads have no side effects. */
    private final class Registers implements MmioHandler {
        @Override
        public long read(long offset, int size) {
            if (offset >= Nvme.DOORBELL_BASE) {
                return 0; // doorbells are write-only
            }
            int word = (int) offset & ~3;
            long value = readDword(word) & 0xFFFF_FFFFL;
            if (size == 8) {
                value |= (readDword(word + 4) & 0xFFFF_FFFFL) << 32;
                return value;
            }
            value >>>= 8 * (offset & 3);
            return value & ((1L << (8 * size)) - 1);
        }

        @Override
        public void write(long offset, int size, long value) {
            if (offset >= Nvme.DOORBELL_BASE) {
                if (size >= 4) {
                    doorbell(offset, (int) value);
                    if (size == 8) {
                        doorbell(offset + 4, (int) (value >>> 32));
                    }
                }
                return;
            }
            int word = (int) offset & ~3;
            if (size == 8) {
                writeDword(word, (int) value);
                writeDword(word + 4, (int) (value >>> 32));
            } else if (size == 4) {
                writeDword(word, (int) value);
            } else {
                int shift = 8 * (int) (offset & 3);
                int mask = (int) ((1L << (8 * size)) - 1) << shift;
                int merged = (readDword(word) & ~mask) | ((int) (value << shift) & mask);
                if (word != Nvme.REG_INTMS && word != Nvme.REG_INTMC) {
                    writeDword(word, merged);
                }
            }
        }
    }

    private int readDword(int offset) {
        return switch (offset) {
            case Nvme.REG_CAP -> (int) cap;
            case Nvme.REG_CAP + 4 -> (int) (cap >>> 32);
            case Nvme.REG_VS -> Nvme.VERSION_1_4;
            case Nvme.REG_INTMS, Nvme.REG_INTMC -> intms;
            case Nvme.REG_CC -> cc;
            case Nvme.REG_CSTS -> fatalStatus ? csts | Nvme.CSTS_CFS : csts;
            case Nvme.REG_AQA -> aqa;
            case Nvme.REG_ASQ -> (int) asq;
            case Nvme.REG_ASQ + 4 -> (int) (asq >>> 32);
            case Nvme.REG_ACQ -> (int) acq;
            case Nvme.REG_ACQ + 4 -> (int) (acq >>> 32);
            default -> 0; // CMBLOC/CMBSZ = 0: no controller memory buffer
        };
    }

    private synchronized void writeDword(int offset, int value) {
        switch (offset) {
            case Nvme.REG_INTMS -> {
                intms |= value;
            }
            case Nvme.REG_INTMC -> {
                intms &= ~value;
                if ((intms & 1) == 0 && !config.isMsixEnabled()) {
                    // Unmasked with completions pending: re-assert.
                    for (int qid = 0; qid <= maxQueues; qid++) {
                        CompletionQueue cq = cqs.get(qid);
                        if (cq != null && cq.interruptsEnabled && cq.hostHead() != cq.tail()) {
                            intxAsserted = true;
                            interrupts.setIntx(true);
                            break;
                        }
                    }
                }
            }
            case Nvme.REG_CC -> writeCc(value);
            case Nvme.REG_AQA -> aqa = value & 0x0FFF_0FFF;
            case Nvme.REG_ASQ -> asq = (asq & 0xFFFF_FFFF_0000_0000L) | (value & 0xFFFF_F000L);
            case Nvme.REG_ASQ + 4 -> asq = (asq & 0xFFFF_FFFFL) | ((long) value << 32);
            case Nvme.REG_ACQ -> acq = (acq & 0xFFFF_FFFF_0000_0000L) | (value & 0xFFFF_F000L);
            case Nvme.REG_ACQ + 4 -> acq = (acq & 0xFFFF_FFFFL) | ((long) value << 32);
            default -> {
                // read-only or reserved (CAP, VS, CSTS, NSSR unsupported, CMB): ignored
            }
        }
    }

    /** CC (NVMe 1.4 §3.1.5; enable/disable §7.6.1, shutdown §7.6.2). */
    private void writeCc(int value) {
        int old = cc;
        cc = value;
        boolean wasEnabled = (old & Nvme.CC_EN) != 0;
        boolean enabled = (value & Nvme.CC_EN) != 0;
        if (wasEnabled && !enabled) {
            disable();
            resets++;
            return;
        }
        if (!wasEnabled && enabled) {
            enable();
        }
        int shn = (value >>> 14) & 3;
        if (enabled && shn != 0 && !shutdown) {
            shutdownController();
        } else if (shn == 0 && (csts & Nvme.CSTS_SHST_MASK) != 0) {
            csts &= ~Nvme.CSTS_SHST_MASK;
        }
    }

    private void enable() {
        int css = (cc >>> 4) & 7, mps = (cc >>> 7) & 0xF, ams = (cc >>> 11) & 7;
        int iosqes = (cc >>> 16) & 0xF, iocqes = (cc >>> 20) & 0xF;
        if (css != 0 || mps > MPS_MAX || ams != 0 || iosqes != Nvme.SQES_LOG2 || iocqes != Nvme.CQES_LOG2) {
            csts = Nvme.CSTS_CFS;
            return;
        }
        int page = 4096 << mps;
        int sqSize = (aqa & 0xFFF) + 1;
        int cqSize = ((aqa >>> 16) & 0xFFF) + 1;
        long sqBase = asq;
        long cqBase = acq;
        if (sqSize < 2 || cqSize < 2 || (sqBase & (page - 1)) != 0 || (cqBase & (page - 1)) != 0
                || !memory.isMapped(sqBase, 64L * sqSize) || !memory.isMapped(cqBase, 16L * cqSize)) {
            csts = Nvme.CSTS_CFS; // malformed admin queue set-up (§7.6.1)
            return;
        }
        pageSize = page;
        shutdown = false;
        CompletionQueue adminCq = new CompletionQueue(0, cqSize, cqBase, 0, true);
        SubmissionQueue adminSq = new SubmissionQueue(0, sqSize, sqBase, adminCq, 0);
        adminCq.attach(adminSq);
        if (doorbellPage != null) {
            doorbellPage.clearQueue(0);
            adminSq.polled = doorbellPage;
            adminCq.polled = doorbellPage;
        }
        cqs.set(0, adminCq);
        sqs.set(0, adminSq);
        QueueWorker worker = new QueueWorker(this, adminSq, new AdminCommandDispatcher(this), QueueWorker.Idle.ADMIN);
        synchronized (live) {
            live.add(worker);
        }
        adminWorker = worker;
        worker.start();
        csts = Nvme.CSTS_RDY;
    }

    /** Stops every worker (joined: no DMA in flight afterwards) and forgets all queues. */
    private void stopAll() {
        QueueWorker admin = adminWorker;
        if (admin != null) {
            admin.stopAndJoin();
        }
        for (int qid = 1; qid <= maxQueues; qid++) {
            SubmissionQueue sq = sqs.get(qid);
            if (sq != null && sq.worker() != null) {
                sq.worker().stopAndJoin();
            }
        }
    }

    /** CC.EN 1→0 (controller reset, §7.3.2): quiesce, abort AERs, delete queues, drop DBBUF, RDY=0. */
    private void disable() {
        stopAll();
        QueueWorker admin = adminWorker;
        if (admin != null && !shutdown) {
            asyncEvents.abortOutstanding(admin);
        }
        List<QueueWorker> workers;
        synchronized (live) {
            workers = new ArrayList<>(live);
        }
        workers.forEach(this::retire);
        for (int qid = 0; qid <= maxQueues; qid++) {
            sqs.set(qid, null);
            cqs.set(qid, null);
        }
        adminWorker = null;
        dbbuf = null;
        if (doorbellPage != null) {
            doorbellPage.clearAll();
        }
        features.reset();
        asyncEvents.reset();
        shutdown = false;
        pageSize = 4096;
        csts = 0;
        fatalStatus = false;
        if (intxAsserted) {
            intxAsserted = false;
            interrupts.setIntx(false);
        }
    }

    /** CC.SHN = 01b/10b: stop processing, flush the backends, report SHST = complete (§7.6.2). */
    private void shutdownController() {
        csts = (csts & ~Nvme.CSTS_SHST_MASK) | Nvme.CSTS_SHST_OCCURRING;
        stopAll();
        shutdown = true;
        for (Namespace ns : namespaces) {
            try {
                ns.backend().flush();
            } catch (Exception ignored) {
                // best effort on shutdown
            }
        }
        csts = (csts & ~Nvme.CSTS_SHST_MASK) | Nvme.CSTS_SHST_COMPLETE;
    }

    /** Doorbell write (§3.1.10/§3.1.11). Invalid queue or value: ignored, async event if one is outstanding. */
    private void doorbell(long offset, int value) {
        if ((csts & Nvme.CSTS_RDY) == 0 || shutdown) {
            return;
        }
        int index = (int) ((offset - Nvme.DOORBELL_BASE) >>> 2);
        int qid = index >>> 1;
        boolean completion = (index & 1) != 0;
        if (qid > maxQueues) {
            asyncEvents.raise(AsyncEvents.INVALID_DOORBELL_REGISTER);
            kickAdmin();
            return;
        }
        if (!completion) {
            SubmissionQueue sq = sqs.get(qid);
            if (sq == null) {
                asyncEvents.raise(AsyncEvents.INVALID_DOORBELL_REGISTER);
                kickAdmin();
                return;
            }
            if (!Nvme.validDoorbell(value, sq.size)) {
                asyncEvents.raise(AsyncEvents.INVALID_DOORBELL_VALUE);
                kickAdmin();
                return;
            }
            mmioSq++;
            if (doorbellPage != null) {
                doorbellPage.store(offset - Nvme.DOORBELL_BASE, value); // the page is the one source of truth
            }
            sq.mmioTail = value;
            QueueWorker w = sq.worker();
            if (w != null) {
                w.wake();
            }
        } else {
            CompletionQueue cq = cqs.get(qid);
            if (cq == null) {
                asyncEvents.raise(AsyncEvents.INVALID_DOORBELL_REGISTER);
                kickAdmin();
                return;
            }
            if (!Nvme.validDoorbell(value, cq.size)) {
                asyncEvents.raise(AsyncEvents.INVALID_DOORBELL_VALUE);
                kickAdmin();
                return;
            }
            mmioCq++;
            if (doorbellPage != null) {
                doorbellPage.store(offset - Nvme.DOORBELL_BASE, value);
            }
            cq.mmioHead = value;
            cq.wakePosters();
            updateIntx();
        }
    }

    // ------------------------------------------------------------------ reset, statistics, close

    private void functionLevelReset() {
        synchronized (this) {
            resetController();
        }
    }

    private void resetController() {
        disable();
        cc = 0;
        aqa = 0;
        asq = 0;
        acq = 0;
        intms = 0;
        msix.reset();
        resets++;
    }

    @Override
    public synchronized void reset() {
        config.reset();
        resetController();
    }

    @Override
    public Map<String, Long> statistics() {
        QueueStats total = new QueueStats();
        int ioQueues = 0;
        synchronized (live) {
            retired.addTo(total);
            for (QueueWorker w : live) {
                w.stats().addTo(total);
            }
        }
        for (int qid = 1; qid <= maxQueues; qid++) {
            if (sqs.get(qid) != null) {
                ioQueues++;
            }
        }
        Map<String, Long> m = new LinkedHashMap<>();
        m.put("admin.commands", total.adminCommands);
        m.put("admin.dbbuf.accepted", total.dbbufAccepted);
        m.put("admin.dbbuf.rejected", total.dbbufRejected);
        m.put("io.commands", total.ioCommands);
        m.put("io.reads", total.reads);
        m.put("io.writes", total.writes);
        m.put("io.flushes", total.flushes);
        m.put("io.bytes.read", total.bytesRead);
        m.put("io.bytes.written", total.bytesWritten);
        m.put("io.errors", total.ioErrors);
        m.put("doorbell.mmio.sq", mmioSq);
        m.put("doorbell.mmio.cq", mmioCq);
        m.put("doorbell.shadow.sq", total.shadowSq);
        m.put("doorbell.shadow.cq", total.shadowCq);
        m.put("doorbell.polled.sq", total.polledSq);
        m.put("worker.naps", total.naps);
        m.put("doorbells.polled", doorbellPage != null ? 1L : 0L);
        m.put("interrupts", total.interrupts);
        m.put("dbbuf.active", dbbuf != null ? 1L : 0L);
        m.put("io.queues", (long) ioQueues);
        m.put("controller.resets", resets);
        m.put("errors.logged", errorLog.count());
        namespaces.forEach(ns -> ns.putStatistics(m));
        // Commands by opcode: admin.opcode.0x06 (Identify), io.opcode.0x02 (Read), ... only those seen.
        for (int op = 0; op < 256; op++) {
            long admin = total.adminByOpcode[op];
            if (admin > 0) {
                m.put(String.format("admin.opcode.0x%02x", op), admin);
            }
            long io = total.ioByOpcode[op];
            if (io > 0) {
                m.put(String.format("io.opcode.0x%02x", op), io);
            }
        }
        return m;
    }

    /** Host-facing totals for the SMART log (data units, commands). */
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

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        disable();
        for (Namespace ns : namespaces) {
            ns.backend().close();
        }
    }
}
