package io.javadevices.nvme;

import io.javadevices.nvme.admin.AdminCommandDispatcher;
import io.javadevices.nvme.admin.AsyncEvents;
import io.javadevices.nvme.admin.FeatureState;
import io.javadevices.nvme.backend.BlockBackend;
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
import java.util.function.Function;

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
 * are synchronized on this object); workers never take this lock. A disable, shutdown or reset only
 * tells the workers to stop; {@link ControllerReset} completes it (CSTS.RDY = 0) once none can DMA.
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
    private final GuestErrors guestErrors = new GuestErrors();
    private final AsyncEvents asyncEvents = new AsyncEvents();
    private final ControllerReset reset;
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
        this(options, context, NvmeOptions.NamespaceSpec::open);
    }

    /** Namespaces opened by {@code open} (tests: a backend that blocks until released). */
    NvmeController(NvmeOptions options, DeviceContext context, Function<NvmeOptions.NamespaceSpec, BlockBackend> open) {
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
                list.add(new Namespace(list.size() + 1, open.apply(spec), spec.lbaSize()));
            }
        } catch (RuntimeException e) {
            list.forEach(ns -> ns.backend().close());
            throw e;
        }
        this.namespaces = List.copyOf(list);
        this.features = new FeatureState(maxQueues + 1, list.stream().anyMatch(ns -> ns.backend().volatileWriteCache()));
        this.sqs = new AtomicReferenceArray<>(maxQueues + 1);
        this.cqs = new AtomicReferenceArray<>(maxQueues + 1);
        this.reset = new ControllerReset(options.stopTimeoutMillis() * 1_000_000L, this::fatal);
        // CAP (NVMe 1.4 Figure 68): MQES, CQR=1, AMS=0, TO ≥ stop-timeout-ms, DSTRD=0, CSS 37 (NVM), MPSMIN=0, MPSMAX.
        long timeout = Math.clamp((options.stopTimeoutMillis() + 499) / 500, 1, 255);
        this.cap = (options.mqes() & 0xFFFFL) | 1L << 16 | timeout << 24 | 1L << 37 | (long) MPS_MAX << 52;
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

    public GuestErrors guestErrors() {
        return guestErrors;
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
        QueueWorker worker = new QueueWorker(this, sq, new IoCommandHandler(this), options.idle());
        synchronized (live) {
            live.add(worker);
        }
        worker.start();
    }

    /** Delete I/O SQ (admin worker): returns once the SQ's worker ended, see {@link ControllerReset#stopAndAwait}. */
    public void removeSubmissionQueue(SubmissionQueue sq) {
        QueueWorker worker = sq.worker();
        QueueWorker admin = adminWorker;
        if (worker != null) {
            if (admin == null || !reset.stopAndAwait(worker, admin)) {
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

    private List<QueueWorker> liveWorkers() {
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

    /**
     * Doorbell Buffer Config (0x7C) accepted: replaces any previous pages, seeds them with the current
     * tails and heads ({@link ShadowSeeding}, admin slots included as QEMU does) and associates every
     * existing I/O queue; wakes the workers so that entries already in the shadow slots are picked up.
     * The old pages are never touched again.
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

    private void associate(CompletionQueue cq, DbbufPages pages) {
        ShadowDoorbell sh = new ShadowDoorbell(memory, pages.shadow(), pages.eventIdx(), cq.qid, true);
        // CQ EventIdx "never" (0xFFFF, as SPDK): the host MMIOs the CQ head at most once per wrap; a poster
        // blocked on a full CQ re-arms it with the known head (QEMU fa5db2aa168b). An unreachable slot leaves
        // the CQ on its MMIO or polled head.
        cq.useShadow(sh, 0xFFFF);
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

    @Override
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
        stats.interrupts++;
        if (config.isMsixEnabled()) {
            interrupts.signalMsix(cq.vector);
        } else if ((intms & 1) == 0 && !config.isIntxDisabled()) {
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
        rejectDoorbell(GuestErrors.Kind.DOORBELL_INVALID_SQ_TAIL, qid, value);
    }

    /** A doorbell the guest must not write: counted and logged rate-limited, then the async event (§3.1.10). */
    private void rejectDoorbell(GuestErrors.Kind kind, int qid, int value) {
        guestErrors.record(kind, (long) qid << 32 | (value & 0xFFFF_FFFFL));
        asyncEvents.raise(kind == GuestErrors.Kind.DOORBELL_INVALID_SQ || kind == GuestErrors.Kind.DOORBELL_INVALID_CQ
                ? AsyncEvents.INVALID_DOORBELL_REGISTER : AsyncEvents.INVALID_DOORBELL_VALUE);
        kickAdmin();
    }

    @Override
    public void fatal(String why) {
        LOG.log(System.Logger.Level.WARNING, "controller fatal status: {0}", why);
        fatalStatus = true; // the host sees CSTS.CFS and resets the controller
    }

    @Override
    public void commandFailed(int sqid, int cid, Throwable t) {
        guestErrors.record(GuestErrors.Kind.COMMAND_EXCEPTION, (long) sqid << 16 | (cid & 0xFFFF), t); // once per window, not per command
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
                        if (cq != null && cq.interruptsEnabled() && cq.hostHead() != cq.tail()) {
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
            disable(false);
            resets++;
            return;
        }
        if (!wasEnabled && enabled && !reset.inProgress()) {
            enable(); // else deferred: the pending disable enables once the old workers are gone
        }
        int shn = (value >>> 14) & 3;
        if (enabled && shn != 0 && !shutdown) {
            shutdownController();
        } else if (shn == 0 && (csts & Nvme.CSTS_SHST_MASK) != 0) {
            csts &= ~Nvme.CSTS_SHST_MASK;
        }
    }

    private void enable() {
        SubmissionQueue adminSq = AdminQueueSetup.admin(cc, aqa, asq, acq, memory);
        if (adminSq == null) {
            csts = Nvme.CSTS_CFS; // unsupported CC or malformed admin queue set-up (§7.6.1)
            return;
        }
        pageSize = AdminQueueSetup.pageSize(cc);
        shutdown = false;
        CompletionQueue adminCq = adminSq.cq;
        if (doorbellPage != null) {
            doorbellPage.clearQueue(0);
            adminSq.usePolled(doorbellPage);
            adminCq.usePolled(doorbellPage);
        }
        cqs.set(0, adminCq);
        sqs.set(0, adminSq);
        QueueWorker worker = new QueueWorker(this, adminSq, new AdminCommandDispatcher(this), options.idle().admin());
        synchronized (live) {
            live.add(worker);
        }
        adminWorker = worker;
        worker.start();
        csts = Nvme.CSTS_RDY;
    }

    /** CC.EN 1→0 (§7.3.2): stops the workers and returns; {@link #finishDisable} runs once all ended. */
    private void disable(boolean function) {
        reset.begin(this::liveWorkers, () -> finishDisable(function));
    }

    /**
     * No worker can DMA any more: delete the queues, drop DBBUF and AERs (no CQE: Linux nvme_dev_disable
     * cancels them itself, QEMU nvme_ctrl_reset drops them), RDY = 0; then a CC.EN = 1 written meanwhile.
     * {@code function}: FLR or device reset (the MSI-X table too).
     */
    private synchronized void finishDisable(boolean function) {
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
        if (function) {
            msix.reset();
        } else if ((cc & Nvme.CC_EN) != 0 && !closed) {
            enable();
        }
    }

    /** CC.SHN = 01b/10b: stop processing; once the workers ended flush the backends, SHST = complete (§7.6.2). */
    private void shutdownController() {
        csts = (csts & ~Nvme.CSTS_SHST_MASK) | Nvme.CSTS_SHST_OCCURRING;
        shutdown = true;
        reset.begin(this::liveWorkers, () -> {
            namespaces.forEach(Namespace::flushQuietly);
            synchronized (this) {
                if (shutdown) {
                    csts = (csts & ~Nvme.CSTS_SHST_MASK) | Nvme.CSTS_SHST_COMPLETE;
                }
            }
        });
    }

    /** Doorbell write (§3.1.10/§3.1.11). Invalid queue or value: ignored, async event if one is outstanding. */
    private void doorbell(long offset, int value) {
        if ((csts & Nvme.CSTS_RDY) == 0 || shutdown || reset.inProgress()) {
            return; // not ready, or the workers are being stopped
        }
        int index = (int) ((offset - Nvme.DOORBELL_BASE) >>> 2);
        int qid = index >>> 1;
        boolean completion = (index & 1) != 0;
        if (qid > maxQueues) {
            rejectDoorbell(completion ? GuestErrors.Kind.DOORBELL_INVALID_CQ : GuestErrors.Kind.DOORBELL_INVALID_SQ, qid, value);
            return;
        }
        if (!completion) {
            SubmissionQueue sq = sqs.get(qid);
            if (sq == null) {
                rejectDoorbell(GuestErrors.Kind.DOORBELL_INVALID_SQ, qid, value);
                return;
            }
            if (!Nvme.validDoorbell(value, sq.size)) {
                rejectDoorbell(GuestErrors.Kind.DOORBELL_INVALID_SQ_TAIL, qid, value);
                return;
            }
            mmioSq++;
            if (doorbellPage != null) {
                doorbellPage.store(offset - Nvme.DOORBELL_BASE, value); // the page is the one source of truth
            }
            sq.mmioTail(value);
            ShadowSeeding.mirrorAdmin(memory, dbbuf, qid, false, value); // QEMU nvme_process_db
            QueueWorker w = sq.worker();
            if (w != null) {
                w.wake();
            }
        } else {
            CompletionQueue cq = cqs.get(qid);
            if (cq == null) {
                rejectDoorbell(GuestErrors.Kind.DOORBELL_INVALID_CQ, qid, value);
                return;
            }
            if (!Nvme.validDoorbell(value, cq.size)) {
                rejectDoorbell(GuestErrors.Kind.DOORBELL_INVALID_CQ_HEAD, qid, value);
                return;
            }
            mmioCq++;
            if (doorbellPage != null) {
                doorbellPage.store(offset - Nvme.DOORBELL_BASE, value);
            }
            cq.mmioHead(value);
            ShadowSeeding.mirrorAdmin(memory, dbbuf, qid, true, value);
            cq.wakePosters();
            updateIntx();
        }
    }

    // ------------------------------------------------------------------ reset, statistics, close

    /** PCIe Device Control bit 15: waits at most the 100 ms an FLR may take (PCIe Base 4.0 §6.6.2). */
    private void functionLevelReset() {
        synchronized (this) {
            resetController();
        }
        reset.awaitIdle(100_000_000L); // a worker stuck longer: the reset thread completes it (CFS past CAP.TO)
    }

    private void resetController() {
        disable(true);
        cc = 0;
        aqa = 0;
        asq = 0;
        acq = 0;
        intms = 0;
        resets++;
    }

    /** Waits until no worker can DMA, at most CAP.TO; past it CSTS.CFS is set (see {@link PciDevice#reset()}). */
    @Override
    public void reset() {
        synchronized (this) {
            config.reset();
            resetController();
        }
        reset.awaitIdle(reset.boundNanos() + 100_000_000L); // past the bound: CFS is set by then
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
        guestErrors.addTo(m);
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
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            disable(false);
        }
        reset.close(); // waits up to CAP.TO for the workers
        for (Namespace ns : namespaces) {
            ns.backend().close();
        }
    }
}
