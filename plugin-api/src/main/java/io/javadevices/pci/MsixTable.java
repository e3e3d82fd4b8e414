package io.javadevices.pci;

import java.util.concurrent.atomic.AtomicLongArray;

/**
 * An MSI-X table and PBA held by the device (PCI 3.0 §6.8.2), for hosts that want the device to own
 * them, like an in-process VMM or the test host. The vfio-user transport does not need it: QEMU emulates
 * the table itself and only forwards PBA reads (answered with zeros).
 *
 * <p>Implement a BAR with {@link #tableHandler()} at the table offset and {@link #pbaHandler()} at the
 * PBA offset, or use {@link #asBarHandler(long, long)} when both share a BAR. Thread-safe: table entries
 * are read by interrupt-delivering threads while the host writes them.
 */
public final class MsixTable {
    /** Vector Control bit 0: the vector is masked (PCI 3.0 Table 6-10). Masked after reset. */
    public static final int VECTOR_MASKED = 1;

    private final int vectors;
    private final AtomicLongArray words; // two longs per entry: address, (control << 32 | data)
    private final AtomicLongArray pending;

    public MsixTable(int vectors) {
        if (vectors < 1 || vectors > 2048) {
            throw new IllegalArgumentException("vectors " + vectors);
        }
        this.vectors = vectors;
        this.words = new AtomicLongArray(vectors * 2);
        this.pending = new AtomicLongArray((vectors + 63) / 64);
        reset();
    }

    public int vectors() {
        return vectors;
    }

    /** All entries masked, addresses and data cleared, nothing pending. */
    public void reset() {
        for (int v = 0; v < vectors; v++) {
            words.set(2 * v, 0);
            words.set(2 * v + 1, (long) VECTOR_MASKED << 32);
        }
        for (int i = 0; i < pending.length(); i++) {
            pending.set(i, 0);
        }
    }

    public long messageAddress(int vector) {
        return words.get(2 * vector);
    }

    public int messageData(int vector) {
        return (int) words.get(2 * vector + 1);
    }

    public boolean isMasked(int vector) {
        return ((words.get(2 * vector + 1) >>> 32) & VECTOR_MASKED) != 0;
    }

    /** Sets or clears a vector's pending bit (the host does this when it holds back a masked vector). */
    public void setPending(int vector, boolean isPending) {
        long bit = 1L << (vector & 63);
        if (isPending) {
            pending.getAndAccumulate(vector >> 6, bit, (a, b) -> a | b);
        } else {
            pending.getAndAccumulate(vector >> 6, ~bit, (a, b) -> a & b);
        }
    }

    public boolean isPending(int vector) {
        return (pending.get(vector >> 6) & (1L << (vector & 63))) != 0;
    }

    /** Handler for the table alone (offset 0 = entry 0). */
    public MmioHandler tableHandler() {
        return new MmioHandler() {
            @Override
            public long read(long offset, int size) {
                return readTable(offset, size);
            }

            @Override
            public void write(long offset, int size, long value) {
                writeTable(offset, size, value);
            }
        };
    }

    /** Handler for the PBA alone (read-only). */
    public MmioHandler pbaHandler() {
        return new MmioHandler() {
            @Override
            public long read(long offset, int size) {
                return readPba(offset, size);
            }

            @Override
            public void write(long offset, int size, long value) {
                // PBA is read-only.
            }
        };
    }

    /** Handler for a BAR holding the table at {@code tableOffset} and the PBA at {@code pbaOffset}. */
    public MmioHandler asBarHandler(long tableOffset, long pbaOffset) {
        long tableEnd = tableOffset + 16L * vectors;
        long pbaEnd = pbaOffset + 8L * pending.length();
        return new MmioHandler() {
            @Override
            public long read(long offset, int size) {
                if (offset >= tableOffset && offset + size <= tableEnd) {
                    return readTable(offset - tableOffset, size);
                }
                if (offset >= pbaOffset && offset + size <= pbaEnd) {
                    return readPba(offset - pbaOffset, size);
                }
                return 0;
            }

            @Override
            public void write(long offset, int size, long value) {
                if (offset >= tableOffset && offset + size <= tableEnd) {
                    writeTable(offset - tableOffset, size, value);
                }
            }
        };
    }

    private long readTable(long offset, int size) {
        if (offset < 0 || offset + size > 16L * vectors) {
            return 0;
        }
        return extract(words, offset, size);
    }

    private long readPba(long offset, int size) {
        if (offset < 0 || offset + size > 8L * pending.length()) {
            return 0;
        }
        return extract(pending, offset, size);
    }

    private void writeTable(long offset, int size, long value) {
        if (offset < 0 || offset + size > 16L * vectors) {
            return;
        }
        int word = (int) (offset >>> 3);
        int shift = (int) (offset & 7) * 8;
        if (shift + size * 8 > 64) {
            return; // straddles two words: not a legal MSI-X table access
        }
        long mask = size == 8 ? -1L : ((1L << (size * 8)) - 1) << shift;
        words.getAndUpdate(word, old -> (old & ~mask) | ((value << shift) & mask));
    }

    private static long extract(AtomicLongArray array, long offset, int size) {
        int word = (int) (offset >>> 3);
        int shift = (int) (offset & 7) * 8;
        if (shift + size * 8 > 64) {
            return 0;
        }
        long v = array.get(word) >>> shift;
        return size == 8 ? v : v & ((1L << (size * 8)) - 1);
    }
}
