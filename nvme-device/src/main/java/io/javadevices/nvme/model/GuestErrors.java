package io.javadevices.nvme.model;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.function.LongSupplier;

/**
 * Counts guest misbehaviour by named kind and logs it rate-limited: at most one WARNING line per kind per
 * window, carrying how many of that kind were suppressed since the previous line. The kinds follow QEMU's
 * {@code NVME_GUEST_ERR} trace points in hw/nvme/ctrl.c (named in each constant's comment), so that a
 * guest driver bug reads the same here and there. A misbehaving guest can therefore never flood the log,
 * and no stack trace is printed per command.
 *
 * <p>Counting allocates nothing and takes no lock (one atomic add per error, in a fixed array); only the
 * one line per window builds a message. A guest that behaves never reaches this class.
 */
public final class GuestErrors {
    /** Statistic: rate-limited log lines written (the other keys are {@link Kind#key()}). */
    public static final String LOG_LINES = "guest.error.log.lines";
    /** Default window between two lines of the same kind. */
    public static final Duration DEFAULT_WINDOW = Duration.ofSeconds(10);

    /** One kind of guest error; {@link #key} is its name in the controller statistics. */
    public enum Kind {
        /** Doorbell write for an SQ that does not exist (QEMU pci_nvme_ub_db_wr_invalid_sq). */
        DOORBELL_INVALID_SQ("db-invalid-sq"),
        /** Doorbell write for a CQ that does not exist (pci_nvme_ub_db_wr_invalid_cq). */
        DOORBELL_INVALID_CQ("db-invalid-cq"),
        /** SQ tail ≥ queue size, by MMIO, shadow slot or polled page (pci_nvme_ub_db_wr_invalid_sqtail). */
        DOORBELL_INVALID_SQ_TAIL("db-invalid-sq-tail"),
        /** CQ head ≥ queue size (pci_nvme_ub_db_wr_invalid_cqhead). */
        DOORBELL_INVALID_CQ_HEAD("db-invalid-cq-head"),
        /** Get Log Page offset not a dword multiple or beyond the log (pci_nvme_err_invalid_log_page_offset). */
        INVALID_LOG_OFFSET("invalid-log-offset"),
        /** A PRP entry or PRP list pointer with a forbidden offset (pci_nvme_err_invalid_prplist_ent, _prp2_align). */
        INVALID_PRP_OFFSET("invalid-prp-offset"),
        /** A PRP list that chains without progress or needs more pieces than MDTS allows. */
        INVALID_PRP_LIST("invalid-prp-list"),
        /** A malformed SGL: a descriptor of the wrong type or sub type, a bad segment, a wrong total length. */
        INVALID_SGL("invalid-sgl"),
        /** A DMA address outside guest memory: Data Transfer Error (pci_nvme_err_addr_read / _addr_write). */
        DMA_OUTSIDE_MEMORY("dma-outside-memory"),
        /** An admin command completed with Invalid Field in Command (pci_nvme_err_invalid_* of the admin commands). */
        ADMIN_INVALID_FIELD("admin-invalid-field"),
        /** A command threw unexpectedly and completed with Internal Error (a controller bug a guest reached). */
        COMMAND_EXCEPTION("command-exception");

        private final String key;

        Kind(String name) {
            this.key = "guest.error." + name;
        }

        public String key() {
            return key;
        }
    }

    private static final Kind[] KINDS = Kind.values();

    private final System.Logger log;
    private final LongSupplier nanoClock;
    private final long windowNanos;
    private final AtomicLongArray counts = new AtomicLongArray(KINDS.length);
    /** Per kind: when its last line was logged, and its count at that moment. */
    private final AtomicLongArray loggedAt = new AtomicLongArray(KINDS.length);
    private final AtomicLongArray countAtLine = new AtomicLongArray(KINDS.length);
    private final AtomicLong lines = new AtomicLong();

    public GuestErrors() {
        this(System.getLogger(GuestErrors.class.getName()), System::nanoTime, DEFAULT_WINDOW);
    }

    /** For tests: a logger to capture and a clock to step. */
    public GuestErrors(System.Logger log, LongSupplier nanoClock, Duration window) {
        this.log = log;
        this.nanoClock = nanoClock;
        this.windowNanos = window.toNanos();
        long longAgo = nanoClock.getAsLong() - windowNanos;
        for (int i = 0; i < KINDS.length; i++) {
            loggedAt.set(i, longAgo); // the first error of each kind is logged at once
        }
    }

    /** Counts one error of {@code kind}; {@code detail} (a queue id, an address, a value) goes into a logged line. */
    public void record(Kind kind, long detail) {
        record(kind, detail, null);
    }

    /** As {@link #record(Kind, long)}, with the exception that caused it (logged with the line, not per error). */
    public void record(Kind kind, long detail, Throwable cause) {
        int i = kind.ordinal();
        long total = counts.incrementAndGet(i);
        long last = loggedAt.get(i);
        long now = nanoClock.getAsLong();
        if (now - last < windowNanos || !loggedAt.compareAndSet(i, last, now)) {
            return; // logged recently (or another thread is logging this window's line)
        }
        long suppressed = total - 1 - countAtLine.getAndSet(i, total);
        lines.incrementAndGet();
        String message = "guest error " + kind.key + " (detail 0x" + Long.toHexString(detail) + "), " + total
                + " so far, " + suppressed + " suppressed since the last line";
        if (cause != null) {
            log.log(System.Logger.Level.WARNING, message, cause);
        } else {
            log.log(System.Logger.Level.WARNING, message);
        }
    }

    public long count(Kind kind) {
        return counts.get(kind.ordinal());
    }

    /** Lines logged so far (all kinds). */
    public long linesLogged() {
        return lines.get();
    }

    /** Adds {@code guest.error.<kind>} for every kind (0 included, so the keys are stable) and the line count. */
    public void addTo(Map<String, Long> statistics) {
        for (Kind k : KINDS) {
            statistics.put(k.key, counts.get(k.ordinal()));
        }
        statistics.put(LOG_LINES, lines.get());
    }
}
