package io.javadevices.nvme;

import io.javadevices.nvme.backend.BlockBackend;

/**
 * One active namespace: NSID, backend and LBA format (NVMe 1.4 §6, one LBA format, no metadata).
 */
public final class Namespace {
    private final int nsid;
    private final BlockBackend backend;
    private final int lbaShift;
    private final long blocks;

    public Namespace(int nsid, BlockBackend backend, int lbaSize) {
        this.nsid = nsid;
        this.backend = backend;
        this.lbaShift = Integer.numberOfTrailingZeros(lbaSize);
        this.blocks = backend.size() >>> lbaShift;
    }

    public int nsid() {
        return nsid;
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

    /** True if {@code [slba, slba + count)} lies inside the namespace (overflow-safe). */
    public boolean inRange(long slba, long count) {
        return slba >= 0 && count >= 0 && slba <= blocks && count <= blocks - slba;
    }

    /** Shutdown (§7.6.2): flushes the backend, best effort (a failing backend must not stop the shutdown). */
    void flushQuietly() {
        try {
            backend.flush();
        } catch (Exception ignored) {
            // nothing more to do on shutdown
        }
    }
}
