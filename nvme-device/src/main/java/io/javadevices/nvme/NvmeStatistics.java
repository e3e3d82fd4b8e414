package io.javadevices.nvme;

import io.javadevices.nvme.admin.AsyncEvents;
import io.javadevices.nvme.backend.IoEngines;
import io.javadevices.nvme.model.ErrorLog;
import io.javadevices.nvme.model.GuestErrors;
import io.javadevices.nvme.model.Namespace;
import io.javadevices.nvme.queue.NamespaceViews;
import io.javadevices.nvme.queue.QueueStats;
import io.javadevices.nvme.queue.QueueTable;
import io.javadevices.nvme.queue.QueueWorker;
import io.javadevices.nvme.queue.SubmissionQueue;
import io.javadevices.pci.Histogram;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The keys of {@link NvmeController#statistics()}: the contract between the controller, its tests, the
 * CLI's statistics line and the QEMU tests, which read these exact strings. Guest error counters are
 * {@code guest.error.<kind>} ({@link GuestErrors.Kind}) and namespace counters {@code ns<N>.<name>}
 * ({@link Namespace}); per-opcode counts are {@link #adminOpcode} / {@link #ioOpcode}.
 */
public final class NvmeStatistics {
    private NvmeStatistics() {
    }

    /** Admin commands executed, and Doorbell Buffer Config accepted / rejected. */
    public static final String ADMIN_COMMANDS = "admin.commands",
            DBBUF_ACCEPTED = "admin.dbbuf.accepted",
            DBBUF_REJECTED = "admin.dbbuf.rejected";
    /** NVM commands executed, by kind, bytes moved, and those completed with an error status. */
    public static final String IO_COMMANDS = "io.commands",
            IO_READS = "io.reads",
            IO_WRITES = "io.writes",
            IO_FLUSHES = "io.flushes",
            IO_BYTES_READ = "io.bytes.read",
            IO_BYTES_WRITTEN = "io.bytes.written",
            IO_ERRORS = "io.errors";
    /** NVM commands whose data pointer was an SGL (PSDT 01b/10b) rather than PRPs. */
    public static final String IO_SGL = "io.sgl";
    /** Doorbell values taken from BAR0 writes, from DBBUF shadow slots and from the polled page. */
    public static final String DOORBELL_MMIO_SQ = "doorbell.mmio.sq",
            DOORBELL_MMIO_CQ = "doorbell.mmio.cq",
            DOORBELL_SHADOW_SQ = "doorbell.shadow.sq",
            DOORBELL_SHADOW_CQ = "doorbell.shadow.cq",
            DOORBELL_POLLED_SQ = "doorbell.polled.sq";
    /** Worker naps (DBBUF EventIdx re-arm delayed), 1 when doorbells=polled, interrupts raised. */
    public static final String WORKER_NAPS = "worker.naps",
            DOORBELLS_POLLED = "doorbells.polled",
            INTERRUPTS = "interrupts";
    /** 1 while Doorbell Buffer Config pages are in use; I/O SQs installed now. */
    public static final String DBBUF_ACTIVE = "dbbuf.active",
            IO_QUEUES = "io.queues";
    /** Controller resets (CC.EN 1→0, FLR, device reset) and Error Information log entries. */
    public static final String CONTROLLER_RESETS = "controller.resets",
            ERRORS_LOGGED = "errors.logged";
    /** 1 if the I/O queues run asynchronous backends on io_uring, 0 on the thread pool ({@code io-engine}). */
    public static final String IO_ENGINE_URING = "io.engine.uring";

    /**
     * Per-namespace backend counters of asynchronous operations, summed over queues: {@code ns<N>.inflight} now,
     * {@code ns<N>.inflight.max} (the deepest one queue went), {@code ns<N>.completed}, and latency percentiles
     * in microseconds {@code ns<N>.latency.p50-us}, {@code .p99-us}, {@code .p999-us}, {@code .max-us}.
     */
    public static String namespaceKey(int nsid, String name) {
        return "ns" + nsid + "." + name;
    }

    /**
     * Per-queue counters, {@code sq<N>.<name>} ({@link #queueKey}; N = 0 is the admin queue), of each SQ that exists
     * now, counted since it was created (a Delete / Create I/O Submission Queue or a controller reset starts them
     * again, which Prometheus takes as a counter reset): commands executed, bytes read and written, tail doorbells
     * taken from BAR0 writes and from the DBBUF shadow slot, interrupts raised for its completions (on its CQ),
     * commands completed with an error status, and its asynchronous backend operations in flight now.
     */
    public static final String SQ_COMMANDS = "commands", SQ_BYTES_READ = "bytes.read",
            SQ_BYTES_WRITTEN = "bytes.written", SQ_DOORBELLS_MMIO = "doorbells.mmio",
            SQ_DOORBELLS_SHADOW = "doorbells.shadow", SQ_INTERRUPTS = "interrupts", SQ_ERRORS = "errors",
            SQ_INFLIGHT = "inflight";
    /** Histogram of a namespace's ({@code ns<N>.latency}) or a queue's ({@code sq<N>.latency}) asynchronous operations. */
    public static final String LATENCY = "latency";

    public static String queueKey(int qid, String name) {
        return "sq" + qid + "." + name;
    }

    /** The {@code sq<N>.*} counters: the live workers' own {@link QueueStats}, read, never reset or locked. */
    static void putQueues(Map<String, Long> m, QueueTable queues, NamespaceViews views) {
        Map<Integer, NamespaceViews.Totals> async = views.byQueue();
        for (int qid = 0; qid <= queues.maxQueues(); qid++) {
            SubmissionQueue sq = queues.submissionQueue(qid);
            QueueWorker w = sq == null ? null : sq.worker();
            if (w == null) {
                continue;
            }
            QueueStats s = w.stats();
            NamespaceViews.Totals t = async.get(qid);
            m.put(queueKey(qid, SQ_COMMANDS), qid == 0 ? s.adminCommands() : s.ioCommands());
            m.put(queueKey(qid, SQ_BYTES_READ), s.bytesRead());
            m.put(queueKey(qid, SQ_BYTES_WRITTEN), s.bytesWritten());
            m.put(queueKey(qid, SQ_DOORBELLS_MMIO), sq.mmioWrites());
            m.put(queueKey(qid, SQ_DOORBELLS_SHADOW), s.shadowSq());
            m.put(queueKey(qid, SQ_INTERRUPTS), s.interrupts());
            m.put(queueKey(qid, SQ_ERRORS), s.ioErrors());
            m.put(queueKey(qid, SQ_INFLIGHT), t == null ? 0L : t.inFlight);
        }
    }

    /** {@code ns<N>.latency} of every namespace and {@code sq<N>.latency} of every live queue with asynchronous work. */
    static Map<String, Histogram> histograms(NamespaceViews views, List<Namespace> namespaces) {
        Map<String, Histogram> m = new LinkedHashMap<>();
        for (Namespace ns : namespaces) {
            m.put(namespaceKey(ns.nsid(), LATENCY), views.totals(ns).latency.toHistogram());
        }
        views.byQueue().forEach((qid, t) -> m.put(queueKey(qid, LATENCY), t.latency.toHistogram()));
        return m;
    }

    /** Rate-limited guest error log lines written. */
    public static final String GUEST_ERROR_LOG_LINES = GuestErrors.LOG_LINES;

    /** The engine and the per-namespace asynchronous backend counters ({@link #namespaceKey}). */
    static void putBackend(Map<String, Long> m, IoEngines.Choice engine, NamespaceViews views,
                           List<Namespace> namespaces) {
        m.put(IO_ENGINE_URING, engine.uring() ? 1L : 0L);
        for (Namespace ns : namespaces) {
            NamespaceViews.Totals t = views.totals(ns);
            int n = ns.nsid();
            m.put(namespaceKey(n, "inflight"), (long) t.inFlight);
            m.put(namespaceKey(n, "inflight.max"), (long) t.inFlightMax);
            m.put(namespaceKey(n, "completed"), t.completed);
            m.put(namespaceKey(n, "latency.p50-us"), t.latency.percentile(0.50) / 1000);
            m.put(namespaceKey(n, "latency.p99-us"), t.latency.percentile(0.99) / 1000);
            m.put(namespaceKey(n, "latency.p999-us"), t.latency.percentile(0.999) / 1000);
            m.put(namespaceKey(n, "latency.max-us"), t.latency.max() / 1000);
        }
    }

    /** Admin commands with {@code opcode} (e.g. {@code admin.opcode.0x06}, Identify); only those seen are present. */
    public static String adminOpcode(int opcode) {
        return String.format("admin.opcode.0x%02x", opcode);
    }

    /** NVM commands with {@code opcode} (e.g. {@code io.opcode.0x02}, Read); only those seen are present. */
    public static String ioOpcode(int opcode) {
        return String.format("io.opcode.0x%02x", opcode);
    }

    /**
     * The controller's statistics: worker totals (live and retired), MMIO doorbell counts written by the
     * MMIO thread, resets, the error log, guest errors, asynchronous events and the namespaces' counters.
     */
    static Map<String, Long> collect(QueueTable queues, long mmioSq, long mmioCq, long resets, ErrorLog errorLog,
                                     GuestErrors guestErrors, AsyncEvents events, List<Namespace> namespaces) {
        QueueStats total = queues.totals();
        Map<String, Long> m = new LinkedHashMap<>();
        m.put(ADMIN_COMMANDS, total.adminCommands());
        m.put(DBBUF_ACCEPTED, total.dbbufAccepted());
        m.put(DBBUF_REJECTED, total.dbbufRejected());
        m.put(IO_COMMANDS, total.ioCommands());
        m.put(IO_READS, total.reads());
        m.put(IO_WRITES, total.writes());
        m.put(IO_FLUSHES, total.flushes());
        m.put(IO_BYTES_READ, total.bytesRead());
        m.put(IO_BYTES_WRITTEN, total.bytesWritten());
        m.put(IO_ERRORS, total.ioErrors());
        m.put(IO_SGL, total.sglCommands());
        m.put(DOORBELL_MMIO_SQ, mmioSq);
        m.put(DOORBELL_MMIO_CQ, mmioCq);
        m.put(DOORBELL_SHADOW_SQ, total.shadowSq());
        m.put(DOORBELL_SHADOW_CQ, total.shadowCq());
        m.put(DOORBELL_POLLED_SQ, total.polledSq());
        m.put(WORKER_NAPS, total.naps());
        m.put(DOORBELLS_POLLED, queues.doorbellPage() != null ? 1L : 0L);
        m.put(INTERRUPTS, total.interrupts());
        m.put(DBBUF_ACTIVE, queues.doorbellBufferActive() ? 1L : 0L);
        m.put(IO_QUEUES, (long) queues.ioQueueCount());
        m.put(CONTROLLER_RESETS, resets);
        m.put(ERRORS_LOGGED, errorLog.count());
        guestErrors.addTo(m);
        events.putStatistics(m);
        namespaces.forEach(ns -> ns.putStatistics(m));
        for (int op = 0; op < 256; op++) {
            if (total.adminByOpcode(op) > 0) {
                m.put(adminOpcode(op), total.adminByOpcode(op));
            }
            if (total.ioByOpcode(op) > 0) {
                m.put(ioOpcode(op), total.ioByOpcode(op));
            }
        }
        return m;
    }
}
