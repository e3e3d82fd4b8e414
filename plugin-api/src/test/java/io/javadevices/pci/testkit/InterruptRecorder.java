package io.javadevices.pci.testkit;

import io.javadevices.pci.ConfigSpace;
import io.javadevices.pci.InterruptSink;
import io.javadevices.pci.MsixTable;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * An {@link InterruptSink} that records what a device signals, applying the gating a real host applies:
 * an MSI-X interrupt counts only while MSI-X is enabled and not function-masked in the device's config
 * space, the vector is usable (see {@link #setVectorUsable}) and, if the host gave it the device's
 * {@link MsixTable}, the table entry is unmasked (otherwise the vector's pending bit is set).
 *
 * <p>Thread-safe: devices signal from their worker threads; tests wait with {@link #await}.
 */
public final class InterruptRecorder implements InterruptSink {
    private static final int MAX_VECTORS = 2048;

    private final AtomicLongArray counts = new AtomicLongArray(MAX_VECTORS);
    private final AtomicLongArray dropped = new AtomicLongArray(MAX_VECTORS);
    private final boolean[] unusable = new boolean[MAX_VECTORS];
    private final Object signal = new Object();
    private volatile ConfigSpace config;
    private volatile MsixTable table;
    private volatile boolean intx;
    private volatile long intxAssertions;

    /** Makes MSI-X gating follow this config space (the test host calls it on attach). */
    public void follow(ConfigSpace configSpace, MsixTable msixTable) {
        this.config = configSpace;
        this.table = msixTable;
    }

    /** Simulates a vector whose eventfd is not set up (or re-pointed elsewhere by the host). */
    public synchronized void setVectorUsable(int vector, boolean usable) {
        unusable[vector] = !usable;
    }

    @Override
    public void signalMsix(int vector) {
        if (vector < 0 || vector >= MAX_VECTORS) {
            return;
        }
        if (!isMsixVectorUsable(vector)) {
            dropped.incrementAndGet(vector);
            return;
        }
        MsixTable t = table;
        if (t != null && vector < t.vectors() && t.isMasked(vector)) {
            t.setPending(vector, true);
            dropped.incrementAndGet(vector);
            return;
        }
        counts.incrementAndGet(vector);
        synchronized (signal) {
            signal.notifyAll();
        }
    }

    @Override
    public boolean isMsixVectorUsable(int vector) {
        ConfigSpace c = config;
        if (vector < 0 || vector >= MAX_VECTORS || unusable[vector]) {
            return false;
        }
        if (c == null) {
            return true;
        }
        return c.isMsixEnabled() && !c.isMsixFunctionMasked() && vector < c.msixVectorCount();
    }

    @Override
    public void setIntx(boolean asserted) {
        if (asserted && !intx) {
            intxAssertions++;
        }
        intx = asserted;
        synchronized (signal) {
            signal.notifyAll();
        }
    }

    /** Interrupts delivered on {@code vector}. */
    public long count(int vector) {
        return counts.get(vector);
    }

    /** Interrupts a device signalled on {@code vector} that the gating dropped. */
    public long dropped(int vector) {
        return dropped.get(vector);
    }

    /** Interrupts delivered on all vectors. */
    public long total() {
        long sum = 0;
        for (int i = 0; i < MAX_VECTORS; i++) {
            sum += counts.get(i);
        }
        return sum;
    }

    public boolean intxAsserted() {
        return intx;
    }

    public long intxAssertions() {
        return intxAssertions;
    }

    /**
     * Waits until {@code vector} has had more than {@code seen} interrupts, or the timeout passes.
     *
     * @return the count now (compare with {@code seen} to tell whether one arrived)
     */
    public long await(int vector, long seen, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (signal) {
            while (counts.get(vector) <= seen) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    break;
                }
                signal.wait(Math.max(1, left / 1_000_000), 0);
            }
        }
        return counts.get(vector);
    }
}
