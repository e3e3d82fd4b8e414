package io.javadevices.nvme.model;

import io.javadevices.nvme.backend.BlockBackend;

import java.io.IOException;
import java.util.Map;
import java.util.concurrent.atomic.LongAdder;

/**
 * One namespace: NSID, backend and LBA format (NVMe 1.4 §6, no metadata), its identifiers
 * ({@link NamespaceIds}: NGUID, EUI-64, UUID) and its multi-path capabilities (NMIC, §5.20 / Figure 245).
 * Immutable: a new format is a new object ({@link NamespaceTable#replace}), and a copy must carry
 * {@link #ids()} and {@link #nmic()} over.
 */
public final class Namespace {
    private final int nsid;
    private final BlockBackend backend;
    private final int lbaShift;
    private final long blocks;
    private final NamespaceIds ids;
    private final int nmic;
    /**
     * Durability counters, counted by the I/O workers of every queue: LongAdders (no shared cache line) and
     * only on the durable paths (Flush, FUA, write-through), which pay for an fdatasync anyway.
     */
    private final LongAdder flushes = new LongAdder(), fuaWrites = new LongAdder(), writeThroughs = new LongAdder();
    /** Blocks marked by Write Uncorrectable (reads fail until rewritten). */
    private final UncorrectableBlocks uncorrectable = new UncorrectableBlocks();

    /** A private namespace (NMIC 0) with identifiers derived from NSID {@code nsid} alone (tests). */
    public Namespace(int nsid, BlockBackend backend, int lbaSize) {
        this(nsid, backend, lbaSize, NamespaceIds.derived("", nsid), 0);
    }

    /**
     * @param ids  the namespace's NGUID, EUI-64 and UUID (kept across formats and restarts)
     * @param nmic Namespace Multi-path I/O and Namespace Sharing Capabilities as created (bit 0: shared)
     */
    public Namespace(int nsid, BlockBackend backend, int lbaSize, NamespaceIds ids, int nmic) {
        this.ids = java.util.Objects.requireNonNull(ids, "ids");
        this.nmic = nmic;
        this.nsid = nsid;
        this.backend = backend;
        this.lbaShift = Integer.numberOfTrailingZeros(lbaSize);
        this.blocks = backend.size() >>> lbaShift;
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
        return backend.size();
    }

    public BlockBackend backend() {
        return backend;
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

    /** A write with FUA set completed (made durable). */
    public void countFuaWrite() {
        fuaWrites.increment();
    }

    /** A write completed while the volatile write cache was disabled (made durable). */
    public void countWriteThrough() {
        writeThroughs.increment();
    }

    /**
     * Adds {@code nsN.flushes}, {@code nsN.writes.fua}, {@code nsN.writes.through} (cache disabled),
     * {@code nsN.syncs} (fdatasyncs done), {@code nsN.sync.errors} and {@code nsN.sync.failed} (1 once a sync
     * failed: flushes fail until the namespace is opened again).
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
