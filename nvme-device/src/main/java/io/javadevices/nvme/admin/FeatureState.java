package io.javadevices.nvme.admin;

/**
 * Current values of the features of Get/Set Features (NVMe 1.4 §5.21.1), reset to defaults on
 * controller reset. Read by queue workers (coalescing), written by the admin worker: volatile fields.
 */
public final class FeatureState {
    /** Default Temperature Threshold (over) = 343 K, below Identify WCTEMP. */
    public static final int DEFAULT_TEMP_OVER = 343;

    private final int vectors;
    volatile int arbitration;
    volatile int powerManagement;
    volatile int tempOver = DEFAULT_TEMP_OVER;
    volatile int tempUnder;
    volatile int errorRecovery;
    volatile int volatileWriteCache = 1;
    volatile int coalescing;
    volatile boolean[] coalescingDisabled;
    volatile int writeAtomicity;
    volatile int asyncEventConfig;
    volatile int softwareProgress;

    public FeatureState(int vectors) {
        this.vectors = vectors;
        reset();
    }

    public void reset() {
        arbitration = 0;
        powerManagement = 0;
        tempOver = DEFAULT_TEMP_OVER;
        tempUnder = 0;
        errorRecovery = 0;
        volatileWriteCache = 1;
        coalescing = 0;
        coalescingDisabled = new boolean[vectors];
        writeAtomicity = 0;
        asyncEventConfig = 0;
        softwareProgress = 0;
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

    public boolean volatileWriteCacheEnabled() {
        return (volatileWriteCache & 1) != 0;
    }
}
