package io.javadevices.nvme.regs;

import io.javadevices.pci.MmioHandler;

import java.util.List;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * BAR0 of the controller (QEMU hw/nvme nvme_mmio_read / nvme_write_bar): the register table below 1000h
 * and the doorbells from 1000h (CAP.DSTRD = 0, so SQ y tail at 1000h + 8y, CQ y head at 1004h + 8y).
 *
 * <pre>
 * 00h CAP    8  RO         capabilities (built by the controller)
 * 08h VS     4  RO         1.4.0
 * 0Ch INTMS  4  W1S        interrupt mask set   (live: {@link Listener#interruptMask})
 * 10h INTMC  4  W1C        interrupt mask clear (live: same mask)
 * 14h CC     4  RW         controller configuration  → {@link Listener#controllerConfiguration}
 * 1Ch CSTS   4  RO         controller status    (live: {@link Listener#controllerStatus})
 * 24h AQA    4  0FFF0FFFh  admin queue attributes
 * 28h ASQ    8  ..F000h    admin SQ base (page aligned)
 * 30h ACQ    8  ..F000h    admin CQ base (page aligned)
 * other      0  RO         NSSR unsupported, CMBLOC/CMBSZ = 0 (no controller memory buffer)
 * </pre>
 *
 * <p>Every access is split into dwords: an 8-byte access is two, a 1- or 2-byte write is merged into
 * the dword read back. Reads have no side effects; doorbells are write-only and read as 0.
 *
 * <p>Threads: the host calls the handler one access at a time; writes hold the controller's lock (the
 * CC state machine runs under it), reads do not.
 */
public final class Bar0Registers implements MmioHandler {
    public static final int CAP = 0x00, VS = 0x08, INTMS = 0x0C, INTMC = 0x10, CC = 0x14, CSTS = 0x1C,
            AQA = 0x24, ASQ = 0x28, ACQ = 0x30;
    public static final int DOORBELL_BASE = 0x1000;
    static final int VERSION_1_4 = 0x0001_0400;

    /** What BAR0 writes and live reads do in the controller. */
    public interface Listener {
        /** CC written (NVMe 1.4 §3.1.5): the state machine of enable, disable and shutdown. */
        void controllerConfiguration(int old, int value);

        /** CSTS as read now. */
        int controllerStatus();

        int interruptMask();

        void interruptMaskSet(int bits);

        void interruptMaskClear(int bits);

        /** A 4-byte doorbell write at {@code offset} (≥ 1000h). */
        void doorbell(long offset, int value);
    }

    private final Object lock;
    private final Listener listener;
    private final List<Register> table;
    private final AtomicLongArray values;

    public Bar0Registers(long cap, Object lock, Listener listener) {
        this.lock = lock;
        this.listener = listener;
        this.table = List.of(
                Register.stored("CAP", CAP, 8, 0, cap, null),
                Register.stored("VS", VS, 4, 0, VERSION_1_4, null),
                Register.live("INTMS", INTMS, listener::interruptMask, (old, v) -> listener.interruptMaskSet((int) v)),
                Register.live("INTMC", INTMC, listener::interruptMask, (old, v) -> listener.interruptMaskClear((int) v)),
                Register.stored("CC", CC, 4, 0xFFFF_FFFFL, 0,
                        (old, v) -> listener.controllerConfiguration((int) old, (int) v)),
                Register.live("CSTS", CSTS, listener::controllerStatus, null),
                Register.stored("AQA", AQA, 4, 0x0FFF_0FFFL, 0, null),
                Register.stored("ASQ", ASQ, 8, 0xFFFF_FFFF_FFFF_F000L, 0, null),
                Register.stored("ACQ", ACQ, 8, 0xFFFF_FFFF_FFFF_F000L, 0, null));
        this.values = new AtomicLongArray(table.size());
        reset();
    }

    /** The stored value of the register at {@code offset} (CC, AQA, ASQ, ACQ, CAP, VS). */
    public long value(int offset) {
        for (int i = 0; i < table.size(); i++) {
            if (table.get(i).offset() == offset) {
                return values.get(i);
            }
        }
        throw new IllegalArgumentException("no stored register at " + Integer.toHexString(offset));
    }

    /** Controller reset (§7.3.2): every stored register to its reset value. */
    public void reset() {
        for (int i = 0; i < table.size(); i++) {
            values.set(i, table.get(i).reset());
        }
    }

    @Override
    public long read(long offset, int size) {
        if (offset >= DOORBELL_BASE) {
            return 0; // doorbells are write-only
        }
        int word = (int) offset & ~3;
        long value = readDword(word) & 0xFFFF_FFFFL;
        if (size == 8) {
            return value | (readDword(word + 4) & 0xFFFF_FFFFL) << 32;
        }
        value >>>= 8 * (offset & 3);
        return value & ((1L << (8 * size)) - 1);
    }

    @Override
    public void write(long offset, int size, long value) {
        if (offset >= DOORBELL_BASE) {
            if (size >= 4) {
                listener.doorbell(offset, (int) value);
                if (size == 8) {
                    listener.doorbell(offset + 4, (int) (value >>> 32));
                }
            }
            return; // a 1- or 2-byte doorbell write is not a doorbell value: ignored
        }
        int word = (int) offset & ~3;
        synchronized (lock) {
            if (size == 8) {
                writeDword(word, (int) value);
                writeDword(word + 4, (int) (value >>> 32));
            } else if (size == 4) {
                writeDword(word, (int) value);
            } else {
                int index = indexOf(word);
                if (index >= 0 && table.get(index).live() != null) {
                    return;
                }
                int shift = 8 * (int) (offset & 3);
                int mask = (int) ((1L << (8 * size)) - 1) << shift;
                writeDword(word, (readDword(word) & ~mask) | ((int) (value << shift) & mask));
            }
        }
    }

    private int indexOf(int word) {
        for (int i = 0; i < table.size(); i++) {
            if (table.get(i).contains(word)) {
                return i;
            }
        }
        return -1;
    }

    private int readDword(int word) {
        int index = indexOf(word);
        if (index < 0) {
            return 0;
        }
        Register r = table.get(index);
        long value = r.live() != null ? r.live().getAsInt() : values.get(index);
        return (int) (value >>> (8 * (word - r.offset())));
    }

    private void writeDword(int word, int value) {
        int index = indexOf(word);
        if (index < 0) {
            return; // reserved or unsupported (NSSR, CMB): ignored
        }
        Register r = table.get(index);
        if (r.writable() == 0) {
            return; // read-only (CAP, VS, CSTS)
        }
        if (r.live() != null) {
            r.onWrite().written(0, value & 0xFFFF_FFFFL);
            return;
        }
        int shift = 8 * (word - r.offset());
        long old = values.get(index);
        long merged = (old & ~(0xFFFF_FFFFL << shift)) | ((value & 0xFFFF_FFFFL) << shift);
        long stored = (old & ~r.writable()) | (merged & r.writable());
        values.set(index, stored);
        if (r.onWrite() != null) {
            r.onWrite().written(old, stored);
        }
    }
}
