package io.javadevices.nvme.admin;

/**
 * Current values of the features of Get/Set Features (NVMe 1.4 §5.21.1), reset to defaults on
 * controller reset. Read by queue workers (coalescing), written by the admin worker: volatile fields.
 */
public final class FeatureState {
    /** Default Temperature Threshold (over) = 343 K, below Identify WCTEMP. */
    public static final int DEFAULT_TEMP_OVER = 343;

    private final int vectors;
    /** Identify VWC bit 0: some namespace's backend has a volatile cache (see {@code BlockBackend.volatileWriteCache}). */
    private final boolean writeCachePresent;
    volatile int arbitration;
    volatile int powerManagement;
    volatile int tempOver = DEFAULT_TEMP_OVER;
    volatile int tempUnder;
    volatile int errorRecovery;
    /** Feature 06h WCE; read by every write (write-through when 0). Defaults to on when a cache is present. */
    volatile int volatileWriteCache;
    volatile int coalescing;
    volatile boolean[] coalescingDisabled;
    volatile int writeAtomicity;
    volatile int asyncEventConfig;
    volatile int softwareProgress;
    /** Timestamp (0Eh): milliseconds at {@code timestampAtNanos} (System.nanoTime), set by the host or 0 at reset. */
    private volatile long timestampMillis, timestampAtNanos, resetAtNanos;
    private volatile int timestampOrigin;
    /** Host Behavior Support (16h) byte 0: ACRE. */
    volatile int hostBehaviorAcre;

    public FeatureState(int vectors, boolean writeCachePresent) {
        this.vectors = vectors;
        this.writeCachePresent = writeCachePresent;
        reset();
    }

    public void reset() {
        arbitration = 0;
        powerManagement = 0;
        tempOver = DEFAULT_TEMP_OVER;
        tempUnder = 0;
        errorRecovery = 0;
        volatileWriteCache = defaultVolatileWriteCache();
        coalescing = 0;
        coalescingDisabled = new boolean[vectors];
        writeAtomicity = 0;
        asyncEventConfig = 0;
        softwareProgress = 0;
        // A Controller Level Reset restarts the Timestamp at 0 with Origin 000b (NVMe 1.4 §5.21.1.14).
        resetAtNanos = System.nanoTime();
        timestampAtNanos = resetAtNanos;
        timestampMillis = 0;
        timestampOrigin = 0;
        hostBehaviorAcre = 0;
    }

    /** Set Features Timestamp: {@code millis} from now on (Origin 001b). */
    void setTimestamp(long millis) {
        timestampAtNanos = System.nanoTime();
        timestampMillis = millis;
        timestampOrigin = 1;
    }

    /** The Timestamp at {@code nowNanos}: what was set (or 0 at reset) plus the milliseconds since. */
    long timestamp(long nowNanos) {
        return timestampMillis + (nowNanos - timestampAtNanos) / 1_000_000;
    }

    /** The Timestamp the controller would report had the host never set it: milliseconds since the last reset. */
    long timestampSinceReset(long nowNanos) {
        return (nowNanos - resetAtNanos) / 1_000_000;
    }

    /** Timestamp Origin: 000b counted from a reset, 001b set with Set Features. */
    int timestampOrigin() {
        return timestampOrigin;
    }

    /**
     * Completions per interrupt for {@code vector}: aggregation threshold (0-based THR) + 1, or 1 when
     * coalescing is off or disabled for the vector (Interrupt Vector Configuration CD bit).
     */
    public int coalescingThreshold(int vector) {
        int thr = coalescing & 0xFF;
        if (thr == 0) {
            return 1;
        }
        boolean[] cd = coalescingDisabled;
        if (vector >= 0 && vector < cd.length && cd[vector]) {
            return 1;
        }
        return thr + 1;
    }

    /** True if writes may complete before they are durable; false: every write is synced before it completes. */
    public boolean volatileWriteCacheEnabled() {
        return (volatileWriteCache & 1) != 0;
    }

    /**
     * True if every write to a namespace must be durable before it completes: a cache is present and the host
     * disabled it (WCE = 0). Without a cache there is nothing to write through (ram:/null: backends hold no
     * cache), unless the namespace's own backend has one ({@code cached}): a file namespace the control plane
     * added to a controller that started without any, whose guest was told there is no volatile write cache
     * (Identify VWC cannot change while it runs) and so never flushes.
     */
    public boolean writeThrough(boolean cached) {
        return writeCachePresent ? (volatileWriteCache & 1) == 0 : cached;
    }

    /** Asynchronous Event Configuration (0Bh) bit 8: Namespace Attribute Notices are enabled (NVMe 1.4 §5.21.1.11). */
    public boolean namespaceAttributeNotices() {
        return (asyncEventConfig & 1 << 8) != 0;
    }

    /** Identify Controller VWC bit 0 (NVMe 1.4 Figure 247) and whether Feature 06h exists. */
    public boolean writeCachePresent() {
        return writeCachePresent;
    }

    int defaultVolatileWriteCache() {
        return writeCachePresent ? 1 : 0;
    }
}
