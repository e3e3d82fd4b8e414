package io.javadevices.nvme.model;

import io.javadevices.nvme.backend.BlockBackend;

import java.io.IOException;
import java.util.Map;
import java.util.concurrent.atomic.LongAdder;

/**
 * One namespace: NSID, backend and current LBA format (NVMe 1.4 §6; one of {@link LbaFormats}, no metadata),
 * its identifiers ({@link NamespaceIds}: NGUID, EUI-64, UUID) and its multi-path capabilities (NMIC, §5.20 /
 * Figure 245). Immutable but for its counters, Write Uncorrectable marks and the format-in-progress flag: Format
 * NVM puts a {@link #reformatted} copy into the {@link NamespaceTable}, so a command that already looked this
 * object up finishes with the block size it started with; the copy keeps the identifiers and NMIC.
 */
public final class Namespace {
    private final int nsid;
    private final BlockBackend backend;
    private final int lbaShift;
    /** The capacity in bytes this object was made with: the backend's size then (a resize makes a new object). */
    private final long bytes;
    /** The backend's {@code volatileWriteCache()}, read once: every write asks whether it must write through. */
    private final boolean volatileCache;
    private final long blocks;
    private final NamespaceIds ids;
    private final int nmic;
    /**
     * Durability counters, counted by the I/O workers of every queue: LongAdders (no shared cache line) and
     * only on the durable paths (Flush, FUA, write-through), which pay for an fdatasync anyway.
     */
    private final LongAdder flushes, fuaWrites, writeThroughs;
    /** Blocks marked by Write Uncorrectable (reads fail until rewritten); a format clears them (the copy starts empty). */
    private final UncorrectableBlocks uncorrectable;
    /**
     * Set by Format NVM while it works on this namespace (the admin worker), read by the I/O workers before
     * each command (Format In Progress, NVMe 1.4 Figure 128). One volatile read. A successful format ends by
     * replacing this object; only a failed one clears the flag again.
     */
    private volatile boolean formatting;

    /** A private namespace (NMIC 0) with identifiers derived from NSID {@code nsid} alone (tests). */
    public Namespace(int nsid, BlockBackend backend, int lbaSize) {
        this(nsid, backend, lbaSize, NamespaceIds.derived("", nsid), 0);
    }

    /**
     * @param ids  the namespace's NGUID, EUI-64 and UUID (kept across formats and restarts)
     * @param nmic Namespace Multi-path I/O and Namespace Sharing Capabilities as created (bit 0: shared)
     */
    public Namespace(int nsid, BlockBackend backend, int lbaSize, NamespaceIds ids, int nmic) {
        this(nsid, backend, Integer.numberOfTrailingZeros(lbaSize), backend.size(), ids, nmic, new LongAdder(),
                new LongAdder(), new LongAdder(), new UncorrectableBlocks());
    }

    private Namespace(int nsid, BlockBackend backend, int lbaShift, long bytes, NamespaceIds ids, int nmic,
                      LongAdder flushes, LongAdder fuaWrites, LongAdder writeThroughs, UncorrectableBlocks uncorrectable) {
        this.uncorrectable = uncorrectable;
        this.ids = java.util.Objects.requireNonNull(ids, "ids");
        this.nmic = nmic;
        this.nsid = nsid;
        this.backend = backend;
        this.lbaShift = lbaShift;
        this.bytes = bytes;
        this.blocks = bytes >>> lbaShift;
        this.volatileCache = backend.volatileWriteCache();
        this.flushes = flushes;
        this.fuaWrites = fuaWrites;
        this.writeThroughs = writeThroughs;
    }

    /**
     * This namespace after a Format NVM to 2^{@code newLbaShift}-byte blocks (§5.23): same NSID, backend and
     * statistics counters, the size counted in the new block size, and no Write Uncorrectable marks (every block
     * was formatted). Everything that identifies the namespace (rather than its format) is copied here.
     */
    public Namespace reformatted(int newLbaShift) {
        return new Namespace(nsid, backend, newLbaShift, bytes, ids, nmic, flushes, fuaWrites, writeThroughs,
                new UncorrectableBlocks());
    }

    /**
     * This namespace with a capacity of {@code newBytes} (the control plane's {@code namespace_resize}): same NSID,
     * backend, format, identifiers and counters; NSZE = NCAP = NUSE = {@code newBytes} in blocks. Put into the
     * {@link NamespaceTable} like a {@link #reformatted} copy, so a command that looked this object up finishes
     * inside the size it started with. Write Uncorrectable marks are kept (the caller clears those past a new,
     * smaller end: the range reads zero if it grows again).
     */
    public Namespace resized(long newBytes) {
        return new Namespace(nsid, backend, lbaShift, newBytes, ids, nmic, flushes, fuaWrites, writeThroughs,
                uncorrectable);
    }

    /** Format NVM started ({@code true}: I/O to this namespace gets Format In Progress) or failed ({@code false}). */
    public void setFormatting(boolean inProgress) {
        formatting = inProgress;
    }

    /** True while a Format NVM works on this namespace (it is then replaced by its {@link #reformatted} copy). */
    public boolean formatInProgress() {
        return formatting;
    }

    public int nsid() {
        return nsid;
    }

    /** NGUID, EUI-64 and UUID of this namespace. */
    public NamespaceIds ids() {
        return ids;
    }

    /** Identify Namespace NMIC (bit 0: may be attached to two or more controllers). */
    public int nmic() {
        return nmic;
    }

    /** Capacity in bytes (the pool capacity this namespace holds, NVMCAP). */
    public long bytes() {
        return bytes;
    }

    public BlockBackend backend() {
        return backend;
    }

    /** True if a completed write can be lost unless it is flushed ({@link BlockBackend#volatileWriteCache}). */
    public boolean volatileCache() {
        return volatileCache;
    }

    /** log2 of the LBA data size (9 or 12). */
    public int lbaShift() {
        return lbaShift;
    }

    /** Namespace size in logical blocks (NSZE = NCAP = NUSE). */
    public long blocks() {
        return blocks;
    }

    /** The blocks Write Uncorrectable marked unreadable. */
    public UncorrectableBlocks uncorrectable() {
        return uncorrectable;
    }

    /** A Flush command reached this namespace (directly or through NSID FFFFFFFFh). */
    public void countFlush() {
        flushes.increment();
    }

    /**
     * A write completed and was made durable: because it had FUA set ({@code fua}), or else because the volatile
     * write cache was disabled (write-through).
     */
    public void countDurableWrite(boolean fua) {
        (fua ? fuaWrites : writeThroughs).increment();
    }

    /**
     * Adds {@code nsN.flushes}, {@code nsN.writes.fua}, {@code nsN.writes.through} (cache disabled),
     * {@code nsN.syncs} (durability points done: fdatasyncs and RWF_DSYNC writes, on every engine),
     * {@code nsN.sync.errors} and {@code nsN.sync.failed} (1 once a sync failed: flushes fail until the namespace
     * is opened again).
     */
    public void putStatistics(Map<String, Long> m) {
        String p = "ns" + nsid + ".";
        m.put(p + "flushes", flushes.sum());
        m.put(p + "writes.fua", fuaWrites.sum());
        m.put(p + "writes.through", writeThroughs.sum());
        m.put(p + "syncs", backend.syncs());
        m.put(p + "sync.errors", backend.syncErrors());
        m.put(p + "sync.failed", backend.syncFailed() ? 1L : 0L);
    }

    /** True if {@code [slba, slba + count)} lies inside the namespace (overflow-safe). */
    public boolean inRange(long slba, long count) {
        return slba >= 0 && count >= 0 && slba <= blocks && count <= blocks - slba;
    }

    /**
     * Shutdown (§7.6.2): flushes the backend, best effort (a failing backend must not stop the shutdown).
     * A failure is logged: one line per shutdown and namespace, not per command.
     */
    public void flushQuietly() {
        try {
            backend.flush();
        } catch (IOException | RuntimeException e) {
            System.getLogger(Namespace.class.getName()).log(System.Logger.Level.WARNING,
                    "namespace {0}: flush on shutdown failed: {1}", nsid, e.toString());
        }
    }
}
