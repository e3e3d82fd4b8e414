package io.javadevices.nvme;

import io.javadevices.nvme.admin.AdminCommandDispatcher;
import io.javadevices.nvme.admin.AdminContext;
import io.javadevices.nvme.admin.AdminSettings;
import io.javadevices.nvme.admin.AsyncEvents;
import io.javadevices.nvme.admin.FeatureState;
import io.javadevices.nvme.admin.NamespaceChangeNotices;
import io.javadevices.nvme.backend.BlockBackend;
import io.javadevices.nvme.backend.IoEngines;
import io.javadevices.nvme.control.NamespaceControl;
import io.javadevices.nvme.io.IoCommandHandler;
import io.javadevices.nvme.io.IoContext;
import io.javadevices.nvme.io.NvmOpcodes;
import io.javadevices.nvme.irq.InterruptDelivery;
import io.javadevices.nvme.model.ErrorLog;
import io.javadevices.nvme.model.GuestErrors;
import io.javadevices.nvme.model.Namespace;
import io.javadevices.nvme.model.NamespaceTable;
import io.javadevices.nvme.pool.NvmPool;
import io.javadevices.nvme.queue.CompletionQueue;
import io.javadevices.nvme.queue.NamespaceView;
import io.javadevices.nvme.queue.NamespaceViews;
import io.javadevices.nvme.queue.DoorbellPage;
import io.javadevices.nvme.queue.QueueStats;
import io.javadevices.nvme.queue.QueueTable;
import io.javadevices.nvme.queue.QueueWorker;
import io.javadevices.nvme.queue.SubmissionQueue;
import io.javadevices.nvme.queue.WorkerGrace;
import io.javadevices.nvme.queue.WorkerQuiescer;
import io.javadevices.nvme.regs.Bar0Registers;
import io.javadevices.nvme.spec.Nvme;
import io.javadevices.nvme.spec.Status;
import io.javadevices.pci.Bar;
import io.javadevices.pci.ConfigSpace;
import io.javadevices.pci.DeviceContext;
import io.javadevices.pci.DeviceControl;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.Histogram;
import io.javadevices.pci.MsixTable;
import io.javadevices.pci.PciDevice;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * An NVMe 1.4 controller as a {@link PciDevice}: PCI identity, the CC state machine (enable, disable,
 * shutdown, reset), doorbell routing and the wiring of its parts: the BAR0 register table
 * ({@link Bar0Registers}), the queue table ({@link QueueTable}), interrupt delivery
 * ({@link InterruptDelivery}). Commands are executed by {@link QueueWorker} threads (one per SQ): admin
 * commands by {@link AdminCommandDispatcher} with an {@link AdminContext}, I/O by
 * {@link IoCommandHandler} with an {@link IoContext}, both built at each enable.
 *
 * <p>Namespaces come from an {@link NvmPool} (the capacity pool, option {@code pool}), which builds the
 * {@link NamespaceTable} and changes it for Namespace Management and Attachment; the backend of a deleted
 * namespace is closed by the {@link WorkerGrace} once no queue worker can still be executing a command on it.
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
public final class NvmeController implements PciDevice, QueueWorker.Controller {
    public static final int VENDOR_ID = Nvme.VENDOR_ID;
    public static final int DEVICE_ID = Nvme.DEVICE_ID;
    /** MSI-X table at 0 and PBA at 0x2000 of BAR4 (16 KiB, room for 512 vectors' table). */
    public static final int MSIX_BAR = 4, MSIX_TABLE_OFFSET = 0, MSIX_PBA_OFFSET = 0x2000;
    /** CAP.MPSMAX: host pages up to 64 KiB. */
    public static final int MPS_MAX = Nvme.MPS_MAX;

    private static final System.Logger LOG = System.getLogger(NvmeController.class.getName());

    private final NvmeOptions options;
    private final GuestMemory memory;
    private final NvmPool pool;
    private final NamespaceTable namespaces;
    private final WorkerGrace grace;
    /** The I/O workers' asynchronous namespace views: the delete grace and the per-namespace statistics. */
    private final NamespaceViews views = new NamespaceViews();
    /** How I/O queues run asynchronous backends (option io-engine), chosen once. */
    private final IoEngines.Choice engine;
    /** Registered with guest memory: the host releases unmapped RAM only once no operation in flight uses it. */
    private final WorkerQuiescer quiescer;
    private final MsixTable msix;
    private final ConfigSpace config;
    private final int maxQueues;
    private final FeatureState features;
    private final ErrorLog errorLog = new ErrorLog();
    private final GuestErrors guestErrors = new GuestErrors();
    private final AsyncEvents asyncEvents = new AsyncEvents();
    private final ControllerReset reset;
    private final QueueTable queues;
    private final InterruptDelivery irq;
    private final Bar0Registers registers;
    /** The control plane's namespace methods (host-side add, remove, resize). */
    private final NamespaceControl control;

    // CC state (NVMe 1.4 §3.1.6 CSTS): written by the host thread under this lock; volatile for workers.
    private volatile int csts;
    private volatile boolean shutdown;
    /** Set by a worker that hit a fatal condition; reads of CSTS include CFS until the next disable. */
    private volatile boolean fatalStatus;
    /**
     * Disables (CC.EN 1→0, FLR, device reset) begun whose {@link #finishDisable} has not run yet; written under
     * this lock, the lock CC writes hold, so a CC.EN = 1 is deferred exactly while one is pending. Volatile for
     * the doorbell path: it falls to 0 before a deferred enable sets RDY, so the host's first doorbell after
     * RDY = 1 is never taken for one of the old queues'.
     */
    private volatile int disablesUnderWay;

    // Statistics. MMIO counters are plain fields written only by the (single, serialised) MMIO thread;
    // worker counters live in each worker's QueueStats (summed by the queue table).
    private long mmioSq, mmioCq, resets;
    private volatile boolean closed;

    public NvmeController(NvmeOptions options, DeviceContext context) {
        this(options, context, NvmeOptions.NamespaceSpec::open);
    }

    /** Namespaces opened by {@code open} (tests: a backend that blocks until released). */
    NvmeController(NvmeOptions options, DeviceContext context, Function<NvmeOptions.NamespaceSpec, BlockBackend> open) {
        this.options = options;
        this.memory = context.memory();
        this.maxQueues = options.queues();
        DoorbellPage doorbellPage = options.polledDoorbells() ? new DoorbellPage(context.barMemory()
                .share(0, Nvme.DOORBELL_BASE, DoorbellPage.SIZE)
                .orElseThrow(() -> new IllegalArgumentException("doorbells=polled needs a host that maps BAR memory"
                        + " into the guest (DirectBarMemory); this host offers none"))) : null;
        List<NvmPool.Seed> seeds = options.namespaces().stream().map(spec -> new NvmPool.Seed(
                spec.kind().equals("file") ? Path.of(spec.path()) : null, spec.lbaSize(), () -> open.apply(spec))).toList();
        this.pool = NvmPool.open(options.pool(), seeds, options.serial(), options.maxNamespaces());
        this.namespaces = pool.table();
        List<Namespace> list = namespaces.allocatedList();
        // A directory pool creates file namespaces later: they sit behind the host page cache, so the cache is
        // advertised from the start (Identify VWC cannot change while the guest runs).
        this.features = new FeatureState(maxQueues + 1, pool.persistent()
                || list.stream().anyMatch(ns -> ns.backend().volatileWriteCache()));
        this.reset = new ControllerReset(options.stopTimeoutMillis() * 1_000_000L, this::fatal);
        this.queues = new QueueTable(this, maxQueues, doorbellPage, options.idle(), reset::stopAndAwait);
        this.grace = new WorkerGrace(queues::liveWorkers, views, queues.offload());
        this.engine = IoEngines.choose(options.ioEngine(), options.ioThreads());
        LOG.log(System.Logger.Level.INFO, "nvme: I/O engine {0}", engine.description());
        queues.ioEngines(engine.factory());
        queues.workers(context.workers()); // null: the controller makes its own pool at the first I/O queue
        this.quiescer = new WorkerQuiescer(queues::liveWorkers);
        memory.addQuiescer(quiescer);
        pool.retirer(grace::afterInFlight);
        namespaces.addListener(new NamespaceChangeNotices(asyncEvents, features, queues::kickAdmin)); // §5.2.1
        CommandLineGrammar grammar = new CommandLineGrammar(open);
        this.control = new NamespaceControl(pool, grammar, grace, pool.persistent() ? Map.of()
                : grammar.commandLine(options), options.stopTimeoutMillis());
        // CAP (NVMe 1.4 Figure 68): MQES, CQR=1, AMS=0, TO ≥ stop-timeout-ms, DSTRD=0, CSS 37 (NVM), MPSMIN=0, MPSMAX.
        long timeout = Math.clamp((options.stopTimeoutMillis() + 499) / 500, 1, 255);
        long cap = (options.mqes() & 0xFFFFL) | 1L << 16 | timeout << 24 | 1L << 37 | (long) MPS_MAX << 52;
        this.registers = new Bar0Registers(cap, this, new RegisterWiring());
        this.msix = new MsixTable(maxQueues + 1);
        this.config = ConfigSpace.builder()
                .vendorId(VENDOR_ID).deviceId(DEVICE_ID).subsystemVendorId(VENDOR_ID).subsystemId(DEVICE_ID)
                .revision(1)
                .classCode(0x01, 0x08, 0x02)
                .interruptPin(1)
                .bar(Bar.memory64(0, Nvme.BAR0_SIZE, registers))
                .bar(Bar.memory64(MSIX_BAR, 16 * 1024, msix.asBarHandler(MSIX_TABLE_OFFSET, MSIX_PBA_OFFSET)))
                .msix(maxQueues + 1, MSIX_BAR, MSIX_TABLE_OFFSET, MSIX_BAR, MSIX_PBA_OFFSET)
                .pciExpress()
                .powerManagement()
                .build();
        this.irq = new InterruptDelivery(context.interrupts(), config, features, queues);
        config.addFunctionLevelResetListener(this::functionLevelReset);
        config.addWriteListener((offset, length) -> {
            if (offset <= 0x04 && offset + length > 0x04 && config.isBusMasterEnabled()) {
                queues.kickAll(); // Bus Master Enable set: workers parked without DMA may go on
            }
        });
    }
    // ------------------------------------------------------------------ accessors (tests, the plugin)

    @Override
    public GuestMemory memory() {
        return memory;
    }

    /** Active namespace {@code nsid}, or null. */
    public Namespace namespace(int nsid) {
        return namespaces.attached(nsid);
    }

    /** The subsystem's namespaces: allocated and attached. */
    public NamespaceTable namespaceTable() {
        return namespaces;
    }

    /** MDTS in bytes: 2^mdts × CAP.MPSMIN page (4 KiB). */
    private long maxTransferBytes() {
        return 4096L << options.mdts();
    }

    /** The MSI-X table in BAR4 (an in-process host reads the programmed vectors from it). */
    public MsixTable msixTable() {
        return msix;
    }

    public ErrorLog errorLog() {
        return errorLog;
    }

    public AsyncEvents asyncEvents() {
        return asyncEvents;
    }

    @Override
    public ConfigSpace config() {
        return config;
    }

    // ------------------------------------------------------------------ BAR0 (nvme_write_bar)

    /** What BAR0 writes do here: CC, CSTS, the interrupt mask and the doorbells. */
    private final class RegisterWiring implements Bar0Registers.Listener {
        @Override
        public void controllerConfiguration(int old, int value) {
            writeCc(old, value);
        }

        @Override
        public int controllerStatus() {
            return fatalStatus ? csts | Nvme.CSTS_CFS : csts;
        }

        @Override
        public int interruptMask() {
            return irq.mask();
        }

        @Override
        public void interruptMaskSet(int bits) {
            irq.maskSet(bits);
        }

        @Override
        public void interruptMaskClear(int bits) {
            irq.maskClear(bits);
        }

        @Override
        public void doorbell(long offset, int value) {
            NvmeController.this.doorbell(offset, value);
        }
    }

    /** CC (NVMe 1.4 §3.1.5; enable/disable §7.6.1, shutdown §7.6.2); the register already holds {@code value}. */
    private void writeCc(int old, int value) {
        boolean wasEnabled = (old & Nvme.CC_EN) != 0;
        boolean enabled = (value & Nvme.CC_EN) != 0;
        if (wasEnabled && !enabled) {
            disable(false);
            resets++;
            return;
        }
        if (!wasEnabled && enabled && disablesUnderWay == 0) {
            enable(); // else deferred: the last pending disable enables once the old workers are gone
        }
        int shn = (value >>> 14) & 3;
        if (enabled && shn != 0 && !shutdown) {
            shutdownController();
        } else if (shn == 0 && (csts & Nvme.CSTS_SHST_MASK) != 0) {
            csts &= ~Nvme.CSTS_SHST_MASK;
        }
    }

    private int cc() {
        return (int) registers.value(Bar0Registers.CC);
    }

    /**
     * CC.EN 0→1: builds the admin queue pair from AQA/ASQ/ACQ and starts it. The command sets receive
     * their context now: this enable's page size (CC.MPS) and MDTS hold until the next disable.
     */
    private void enable() {
        SubmissionQueue adminSq = AdminQueueSetup.admin(cc(), (int) registers.value(Bar0Registers.AQA),
                registers.value(Bar0Registers.ASQ), registers.value(Bar0Registers.ACQ), memory);
        if (adminSq == null) {
            csts = Nvme.CSTS_CFS; // unsupported CC or malformed admin queue set-up (§7.6.1)
            return;
        }
        int pageSize = AdminQueueSetup.pageSize(cc());
        shutdown = false;
        AdminSettings settings = new AdminSettings(options.serial(), options.model(), options.mqes(), options.mdts(),
                options.dbbuf());
        AdminContext admin = new AdminContext(settings, memory, namespaces, pageSize, maxTransferBytes(), msix.vectors(),
                errorLog, guestErrors, features, asyncEvents, queues, irq::completionsPosted, NvmOpcodes.TABLE, pool);
        IoContext io = new IoContext(memory, namespaces, pageSize, maxTransferBytes(), errorLog, guestErrors, features);
        queues.startAdmin(adminSq, new AdminCommandDispatcher(admin), () -> new IoCommandHandler(io));
        csts = Nvme.CSTS_RDY;
    }

    /** CC.EN 1→0 (§7.3.2): stops the workers and returns; {@link #finishDisable} runs once all ended. */
    private void disable(boolean function) {
        disablesUnderWay++;
        reset.begin(queues::liveWorkers, () -> finishDisable(function));
    }

    /**
     * No worker can DMA any more: delete the queues, drop DBBUF and AERs (no CQE: Linux nvme_dev_disable
     * cancels them itself, QEMU nvme_ctrl_reset drops them), RDY = 0; then a CC.EN = 1 written meanwhile.
     * {@code function}: FLR or device reset (the MSI-X table too).
     */
    private synchronized void finishDisable(boolean function) {
        disablesUnderWay--;
        queues.clear();
        features.reset();
        asyncEvents.reset();
        shutdown = false;
        csts = 0;
        fatalStatus = false;
        irq.deassertIntx();
        if (function) {
            msix.reset();
        }
        // A CC.EN = 1 deferred meanwhile (after an FLR or device reset too: CC was cleared, so EN = 1 was
        // written since). Only the last pending disable enables: an earlier one would be torn down again.
        if (disablesUnderWay == 0 && (cc() & Nvme.CC_EN) != 0 && !closed) {
            enable();
        }
    }

    /** CC.SHN = 01b/10b: stop processing; once the workers ended flush the backends, SHST = complete (§7.6.2). */
    private void shutdownController() {
        csts = (csts & ~Nvme.CSTS_SHST_MASK) | Nvme.CSTS_SHST_OCCURRING;
        shutdown = true;
        reset.begin(queues::liveWorkers, () -> {
            namespaces.allocatedList().forEach(Namespace::flushQuietly);
            synchronized (this) {
                if (shutdown) {
                    csts = (csts & ~Nvme.CSTS_SHST_MASK) | Nvme.CSTS_SHST_COMPLETE;
                }
            }
        });
    }

    /** Doorbell write (§3.1.10/§3.1.11). Invalid queue or value: ignored, async event if one is outstanding. */
    private void doorbell(long offset, int value) {
        if ((csts & Nvme.CSTS_RDY) == 0 || shutdown || disablesUnderWay > 0) {
            return; // not ready, or the workers are being stopped
        }
        int index = (int) ((offset - Nvme.DOORBELL_BASE) >>> 2);
        int qid = index >>> 1;
        boolean completion = (index & 1) != 0;
        if (qid > maxQueues) {
            rejectDoorbell(completion ? GuestErrors.Kind.DOORBELL_INVALID_CQ : GuestErrors.Kind.DOORBELL_INVALID_SQ, qid, value);
            return;
        }
        DoorbellPage doorbellPage = queues.doorbellPage();
        if (!completion) {
            SubmissionQueue sq = queues.submissionQueue(qid);
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
            queues.mirrorAdminDoorbell(qid, false, value); // QEMU nvme_process_db
            QueueWorker w = sq.worker();
            if (w != null) {
                w.wake();
            }
        } else {
            CompletionQueue cq = queues.completionQueue(qid);
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
            queues.mirrorAdminDoorbell(qid, true, value);
            cq.wakePosters();
            irq.updateIntx();
        }
    }

    /** A doorbell the guest must not write: counted and logged rate-limited, then the async event (§3.1.10). */
    private void rejectDoorbell(GuestErrors.Kind kind, int qid, int value) {
        guestErrors.record(kind, (long) qid << 32 | (value & 0xFFFF_FFFFL));
        asyncEvents.raise(kind == GuestErrors.Kind.DOORBELL_INVALID_SQ || kind == GuestErrors.Kind.DOORBELL_INVALID_CQ
                ? AsyncEvents.INVALID_DOORBELL_REGISTER : AsyncEvents.INVALID_DOORBELL_VALUE);
        queues.kickAdmin();
    }

    // ------------------------------------------------------------------ QueueWorker.Controller

    @Override
    public void namespaceViewOpened(NamespaceView view) {
        views.register(view);
    }

    /** The I/O engine chosen at start and why ({@code threads (4 per I/O queue; io_uring not available: ...)}). */
    public String ioEngine() {
        return engine.description();
    }

    @Override
    public boolean busMasterEnabled() {
        return config.isBusMasterEnabled();
    }

    @Override
    public void completionsPosted(CompletionQueue cq, int posted, QueueStats stats) {
        irq.completionsPosted(cq, posted, stats);
    }

    @Override
    public void flushInterrupts(CompletionQueue cq, QueueStats stats) {
        irq.flushInterrupts(cq, stats);
    }

    @Override
    public void polledIdle() {
        irq.updateIntx(); // with polled doorbells no CQ head write reaches the MMIO path
    }

    @Override
    public void invalidSubmissionTail(int qid, int value) {
        rejectDoorbell(GuestErrors.Kind.DOORBELL_INVALID_SQ_TAIL, qid, value);
    }

    @Override
    public void invalidCompletionHead(int qid, int value) {
        rejectDoorbell(GuestErrors.Kind.DOORBELL_INVALID_CQ_HEAD, qid, value); // as the same value through BAR0
    }

    @Override
    public void commandFetchFailed(int qid, long address) {
        guestErrors.record(GuestErrors.Kind.DMA_OUTSIDE_MEMORY, address);
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

    // ------------------------------------------------------------------ reset, statistics, close

    /** PCIe Device Control bit 15: waits at most the 100 ms an FLR may take (PCIe Base 4.0 §6.6.2). */
    private void functionLevelReset() {
        synchronized (this) {
            resetController();
        }
        reset.awaitIdle(100_000_000L); // a worker stuck longer: the reset thread completes it (CFS past CAP.TO)
    }

    private void resetController() {
        registers.reset(); // first: finishDisable (maybe run at once, inside disable) takes CC.EN = 1 as written since
        irq.resetMask();
        disable(true);
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
        Map<String, Long> m = NvmeStatistics.collect(queues, mmioSq, mmioCq, resets, errorLog, guestErrors, asyncEvents,
                namespaces.allocatedList());
        NvmeStatistics.putBackend(m, engine, views, namespaces.allocatedList());
        NvmeStatistics.putQueues(m, queues, views);
        return m;
    }

    /** The worker of SQ {@code qid}, or null (tests: which thread runs it). */
    QueueWorker queueWorker(int qid) {
        SubmissionQueue sq = queues.submissionQueue(qid);
        return sq == null ? null : sq.worker();
    }

    /** {@code ns<N>.latency} and {@code sq<N>.latency}: the asynchronous operations' latencies ({@link NvmeStatistics}). */
    @Override
    public Map<String, Histogram> histograms() {
        return NvmeStatistics.histograms(views, namespaces.allocatedList());
    }

    /** {@code namespace_list}, {@code namespace_add}, {@code namespace_remove}, {@code namespace_resize}. */
    @Override
    public DeviceControl control() {
        return control;
    }

    /** A Flush of every namespace's backend, attached or not; every one is tried, the failures are named together. */
    @Override
    public void flush() throws IOException {
        List<String> failed = new ArrayList<>();
        for (Namespace ns : namespaces.allocatedList()) {
            try {
                ns.backend().flush();
            } catch (IOException | RuntimeException e) {
                failed.add("namespace " + ns.nsid() + " (" + ns.backend().describe() + "): " + e.getMessage());
            }
        }
        if (!failed.isEmpty()) {
            throw new IOException("flush failed for " + String.join("; ", failed));
        }
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
        if (queues.liveWorkers().stream().allMatch(w -> w.awaitExit(0))) {
            memory.removeQuiescer(quiescer); // a stuck worker keeps it: its memory stays unreleased (leaked, not reused)
        }
        // Deleted namespaces whose release still waits for a worker: a stuck one keeps its backend (leaked, not
        // unmapped under a running command).
        grace.awaitReleases(options.stopTimeoutMillis());
        for (Namespace ns : namespaces.allocatedList()) {
            ns.backend().close();
        }
        pool.close();
        queues.close();
    }
}
