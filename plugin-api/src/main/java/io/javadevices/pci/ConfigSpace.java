package io.javadevices.pci;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A PCI function's configuration space (type 0 header, capability list), with the standard access
 * semantics: read-only fields, writable fields, write-1-to-clear status bits, BAR sizing (writing all
 * ones reads back the size mask), capability chaining. Modelled as a register map: a value array plus
 * a writable mask and a write-1-to-clear mask per byte (the crosvm/cloud-hypervisor pattern), so every
 * access width and any straddling access follows the same rules.
 *
 * <p>Built with {@link #builder()}. 256 bytes for conventional PCI, 4096 when a PCI Express
 * capability is present (bytes 0x100.. are then an empty extended capability list).
 *
 * <p><b>Threads.</b> Accesses are synchronized (config space is not a hot path); the frequently
 * polled state ({@link #isMsixEnabled()}, {@link #isBusMasterEnabled()}...) is cached in volatile
 * fields and may be read from any thread.
 */
public final class ConfigSpace {

    // Standard header offsets (PCI Local Bus 3.0 §6.1).
    public static final int VENDOR_ID = 0x00;
    public static final int DEVICE_ID = 0x02;
    public static final int COMMAND = 0x04;
    public static final int STATUS = 0x06;
    public static final int REVISION_ID = 0x08;
    public static final int CLASS_CODE = 0x09;
    public static final int CACHE_LINE_SIZE = 0x0C;
    public static final int HEADER_TYPE = 0x0E;
    public static final int BAR0 = 0x10;
    public static final int SUBSYSTEM_VENDOR_ID = 0x2C;
    public static final int SUBSYSTEM_ID = 0x2E;
    public static final int EXPANSION_ROM = 0x30;
    public static final int CAPABILITIES_POINTER = 0x34;
    public static final int INTERRUPT_LINE = 0x3C;
    public static final int INTERRUPT_PIN = 0x3D;

    public static final int COMMAND_IO = 1;
    public static final int COMMAND_MEMORY = 1 << 1;
    public static final int COMMAND_BUS_MASTER = 1 << 2;
    public static final int COMMAND_INTX_DISABLE = 1 << 10;
    public static final int STATUS_CAPABILITIES_LIST = 1 << 4;

    // Capability IDs (PCI Code and ID Assignment spec).
    public static final int CAP_ID_POWER_MANAGEMENT = 0x01;
    public static final int CAP_ID_PCI_EXPRESS = 0x10;
    public static final int CAP_ID_MSIX = 0x11;

    public static final int MSIX_CONTROL_ENABLE = 1 << 15;
    public static final int MSIX_CONTROL_FUNCTION_MASK = 1 << 14;

    /** Called after every config write, on the writing thread, outside the config-space lock. */
    @FunctionalInterface
    public interface WriteListener {
        void written(int offset, int length);
    }

    private final byte[] value;
    private final byte[] writable;
    private final byte[] writeOneToClear;
    private final byte[] resetValue;
    private final Bar[] bars;
    private final int msixCapability;
    private final int msixVectors;
    private final int pcieCapability;
    private final int pmCapability;
    private final List<WriteListener> listeners = new CopyOnWriteArrayList<>();
    private final List<Runnable> flrListeners = new CopyOnWriteArrayList<>();

    private volatile boolean msixEnabled;
    private volatile boolean msixMasked;
    private volatile int command;

    private ConfigSpace(Builder b) {
        this.value = b.value;
        this.writable = b.writable;
        this.writeOneToClear = b.w1c;
        this.resetValue = b.value.clone();
        this.bars = b.bars.clone();
        this.msixCapability = b.msixCap;
        this.msixVectors = b.msixVectors;
        this.pcieCapability = b.pcieCap;
        this.pmCapability = b.pmCap;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Size in bytes: 256 or 4096. */
    public int size() {
        return value.length;
    }

    /** Reads 1, 2 or 4 bytes little-endian; out-of-range bytes read as 0. */
    public synchronized int read(int offset, int length) {
        if (length != 1 && length != 2 && length != 4) {
            throw new IllegalArgumentException("config access size " + length);
        }
        int result = 0;
        for (int i = 0; i < length; i++) {
            int at = offset + i;
            int b = at >= 0 && at < value.length ? value[at] & 0xFF : 0;
            result |= b << (8 * i);
        }
        return result;
    }

    /** Copies {@code length} bytes starting at {@code offset} (any alignment) into {@code dst}. */
    public synchronized void read(int offset, byte[] dst, int dstOffset, int length) {
        checkRange(offset, length);
        System.arraycopy(value, offset, dst, dstOffset, length);
    }

    /** Writes 1, 2 or 4 bytes little-endian, applying the writable and write-1-to-clear masks. */
    public void write(int offset, int length, int data) {
        if (length != 1 && length != 2 && length != 4) {
            throw new IllegalArgumentException("config access size " + length);
        }
        byte[] bytes = new byte[length];
        for (int i = 0; i < length; i++) {
            bytes[i] = (byte) (data >>> (8 * i));
        }
        write(offset, bytes, 0, length);
    }

    /** Writes {@code length} bytes at {@code offset} (any alignment), applying the masks byte by byte. */
    public void write(int offset, byte[] src, int srcOffset, int length) {
        checkRange(offset, length);
        boolean flr = false;
        synchronized (this) {
            // PCIe Device Control bit 15 "Initiate Function Level Reset" reads as 0; a write of 1 resets.
            int flrByte = pcieCapability > 0 ? pcieCapability + 9 : -1;
            if (flrByte >= offset && flrByte < offset + length && (src[srcOffset + flrByte - offset] & 0x80) != 0) {
                flr = true;
            }
            for (int i = 0; i < length; i++) {
                int at = offset + i;
                int old = value[at] & 0xFF;
                int in = src[srcOffset + i] & 0xFF;
                int mask = writable[at] & 0xFF;
                int next = (old & ~mask) | (in & mask);
                next &= ~(in & writeOneToClear[at] & 0xFF);
                value[at] = (byte) next;
            }
            refreshCachedState();
        }
        if (flr) {
            reset();
            for (Runnable r : flrListeners) {
                r.run();
            }
            return;
        }
        for (WriteListener l : listeners) {
            l.written(offset, length);
        }
    }

    /**
     * Registers an action run after a guest-initiated Function Level Reset (PCIe Device Control bit 15).
     * Config space has already been reset when it runs; the device resets its own state.
     */
    public void addFunctionLevelResetListener(Runnable listener) {
        flrListeners.add(Objects.requireNonNull(listener));
    }

    private void checkRange(int offset, int length) {
        if (offset < 0 || length < 0 || (long) offset + length > value.length) {
            throw new IllegalArgumentException(String.format(
                    "config access [0x%x, +%d) outside %d-byte config space", offset, length, value.length));
        }
    }

    private void refreshCachedState() {
        command = (value[COMMAND] & 0xFF) | (value[COMMAND + 1] & 0xFF) << 8;
        if (msixCapability > 0) {
            int control = (value[msixCapability + 2] & 0xFF) | (value[msixCapability + 3] & 0xFF) << 8;
            msixEnabled = (control & MSIX_CONTROL_ENABLE) != 0;
            msixMasked = (control & MSIX_CONTROL_FUNCTION_MASK) != 0;
        }
    }

    /** Restores every register to its initial value (function-level reset / power-on). */
    public void reset() {
        synchronized (this) {
            System.arraycopy(resetValue, 0, value, 0, value.length);
            refreshCachedState();
        }
    }

    /** Registers a listener called after each write (e.g. to react to MSI-X enable or FLR). */
    public void addWriteListener(WriteListener listener) {
        listeners.add(Objects.requireNonNull(listener));
    }

    /** The declared BARs (index → bar); {@code null} for unused indices and the upper half of a 64-bit BAR. */
    public Bar bar(int index) {
        return index >= 0 && index < 6 ? bars[index] : null;
    }

    /** The declared BARs in index order. */
    public List<Bar> bars() {
        List<Bar> list = new ArrayList<>();
        for (Bar b : bars) {
            if (b != null) {
                list.add(b);
            }
        }
        return list;
    }

    /** The address the guest programmed into a BAR (flag bits cleared), 0 if unassigned. */
    public synchronized long barAddress(int index) {
        Bar b = bar(index);
        if (b == null) {
            return 0;
        }
        long low = readUnlocked(BAR0 + 4 * index) & 0xFFFFFFFFL;
        long address = low & ~(b.kind() == Bar.Kind.IO ? 0x3L : 0xFL);
        if (b.kind() == Bar.Kind.MEMORY64) {
            address |= (readUnlocked(BAR0 + 4 * index + 4) & 0xFFFFFFFFL) << 32;
        }
        return address;
    }

    private int readUnlocked(int offset) {
        return (value[offset] & 0xFF) | (value[offset + 1] & 0xFF) << 8 | (value[offset + 2] & 0xFF) << 16
                | (value[offset + 3] & 0xFF) << 24;
    }

    public int command() {
        return command;
    }

    public boolean isBusMasterEnabled() {
        return (command & COMMAND_BUS_MASTER) != 0;
    }

    public boolean isMemorySpaceEnabled() {
        return (command & COMMAND_MEMORY) != 0;
    }

    public boolean isIntxDisabled() {
        return (command & COMMAND_INTX_DISABLE) != 0;
    }

    /** Offset of the MSI-X capability, or 0 if none. */
    public int msixCapabilityOffset() {
        return msixCapability;
    }

    /** Number of MSI-X vectors (table size), 0 without MSI-X. */
    public int msixVectorCount() {
        return msixVectors;
    }

    /** MSI-X Enable bit of the capability's Message Control. */
    public boolean isMsixEnabled() {
        return msixEnabled;
    }

    /** MSI-X Function Mask bit of the capability's Message Control. */
    public boolean isMsixFunctionMasked() {
        return msixMasked;
    }

    /** Offset of the PCI Express capability, or 0 if none. */
    public int pciExpressCapabilityOffset() {
        return pcieCapability;
    }

    /** Offset of the Power Management capability, or 0 if none. */
    public int powerManagementCapabilityOffset() {
        return pmCapability;
    }

    /** Offsets of every capability in chain order (walks the list as a guest would). */
    public synchronized List<Integer> capabilityOffsets() {
        List<Integer> offsets = new ArrayList<>();
        int at = value[CAPABILITIES_POINTER] & 0xFC;
        while (at != 0 && offsets.size() < 48) {
            offsets.add(at);
            at = value[at + 1] & 0xFC;
        }
        return offsets;
    }

    /**
     * Builds a config space. Capabilities are laid out from 0x40 in the order they are added, each
     * 4-byte aligned, and chained through the Capabilities Pointer.
     */
    public static final class Builder {
        private byte[] value = new byte[256];
        private byte[] writable = new byte[256];
        private byte[] w1c = new byte[256];
        private final Bar[] bars = new Bar[6];
        private int nextCap = 0x40;
        private int lastCapNext = CAPABILITIES_POINTER;
        private int msixCap;
        private int msixVectors;
        private int pcieCap;
        private int pmCap;
        private boolean built;

        private Builder() {
            // Command: I/O, Memory, Bus Master, Parity Error Response, SERR#, Interrupt Disable are writable.
            mask(COMMAND, 2, 0x0547);
            // Status: Master Data Parity Error, Signaled/Received Target Abort, Received Master Abort,
            // Signaled System Error, Detected Parity Error are write-1-to-clear.
            w1c(STATUS, 2, 0xF900);
            mask(CACHE_LINE_SIZE, 1, 0xFF);
            mask(INTERRUPT_LINE, 1, 0xFF);
        }

        public Builder vendorId(int id) {
            return put(VENDOR_ID, 2, id);
        }

        public Builder deviceId(int id) {
            return put(DEVICE_ID, 2, id);
        }

        public Builder subsystemVendorId(int id) {
            return put(SUBSYSTEM_VENDOR_ID, 2, id);
        }

        public Builder subsystemId(int id) {
            return put(SUBSYSTEM_ID, 2, id);
        }

        public Builder revision(int revision) {
            return put(REVISION_ID, 1, revision);
        }

        /** Class code as base class, subclass, programming interface (e.g. 0x01, 0x08, 0x02 for NVMe). */
        public Builder classCode(int base, int sub, int progIf) {
            put(CLASS_CODE, 1, progIf);
            put(CLASS_CODE + 1, 1, sub);
            return put(CLASS_CODE + 2, 1, base);
        }

        /** Interrupt pin: 0 none, 1..4 = INTA#..INTD#. */
        public Builder interruptPin(int pin) {
            if (pin < 0 || pin > 4) {
                throw new IllegalArgumentException("interrupt pin " + pin);
            }
            return put(INTERRUPT_PIN, 1, pin);
        }

        /** Declares a BAR. Its register gets the flag bits and a writable mask that implements sizing. */
        public Builder bar(Bar bar) {
            int i = bar.index();
            if (bars[i] != null || (i > 0 && bars[i - 1] != null && bars[i - 1].kind() == Bar.Kind.MEMORY64)
                    || (bar.kind() == Bar.Kind.MEMORY64 && bars[i + 1] != null)) {
                throw new IllegalArgumentException("BAR" + i + " already used");
            }
            bars[i] = bar;
            int reg = BAR0 + 4 * i;
            long sizeMask = ~(bar.size() - 1);
            int lowFlags = bar.kind() == Bar.Kind.IO ? 0x3 : 0xF;
            put(reg, 4, bar.flagBits());
            mask(reg, 4, (int) sizeMask & ~lowFlags);
            if (bar.kind() == Bar.Kind.MEMORY64) {
                mask(reg + 4, 4, (int) (sizeMask >>> 32));
            }
            return this;
        }

        /**
         * Adds an MSI-X capability (PCI 3.0 §6.8.2). The table and PBA must lie inside declared BARs;
         * the host (or {@link MsixTable}) implements their contents.
         */
        public Builder msix(int vectors, int tableBar, long tableOffset, int pbaBar, long pbaOffset) {
            if (vectors < 1 || vectors > 2048) {
                throw new IllegalArgumentException("MSI-X vector count " + vectors);
            }
            checkInsideBar(tableBar, tableOffset, 16L * vectors, "MSI-X table");
            checkInsideBar(pbaBar, pbaOffset, 8L * ((vectors + 63) / 64), "MSI-X PBA");
            if ((tableOffset & 7) != 0 || (pbaOffset & 7) != 0) {
                throw new IllegalArgumentException("MSI-X table/PBA offsets must be 8-byte aligned");
            }
            int cap = addCapability(CAP_ID_MSIX, 12);
            put(cap + 2, 2, vectors - 1);
            mask(cap + 2, 2, MSIX_CONTROL_ENABLE | MSIX_CONTROL_FUNCTION_MASK);
            put(cap + 4, 4, (int) tableOffset | tableBar);
            put(cap + 8, 4, (int) pbaOffset | pbaBar);
            msixCap = cap;
            msixVectors = vectors;
            return this;
        }

        /**
         * Adds a PCI Express capability (version 2, endpoint, Function Level Reset capable, link x1 at
         * 2.5 GT/s) and grows config space to 4096 bytes with an empty extended capability list.
         */
        public Builder pciExpress() {
            int cap = addCapability(CAP_ID_PCI_EXPRESS, 0x3C);
            put(cap + 2, 2, 0x0002);                 // capability version 2, device/port type 0 (endpoint)
            put(cap + 4, 4, 1 << 28);                // Device Capabilities: FLR capable, MPS 128 B
            mask(cap + 8, 2, 0x7CFF);                // Device Control (bit 15 = Initiate FLR reads as 0)
            put(cap + 8, 2, 0x2810);                 // MRRS 512 B, No Snoop, Relaxed Ordering defaults
            w1c(cap + 10, 2, 0x000F);                // Device Status error bits
            put(cap + 12, 4, 0x11);                  // Link Capabilities: 2.5 GT/s, x1
            mask(cap + 16, 2, 0x01C3);               // Link Control
            put(cap + 18, 2, 0x11);                  // Link Status: 2.5 GT/s, x1
            mask(cap + 0x28, 2, 0x0400);             // Device Control 2 (LTR enable) — otherwise RO
            pcieCap = cap;
            grow(4096);
            return this;
        }

        /** Adds a Power Management capability (version 3, D0 only, No_Soft_Reset). */
        public Builder powerManagement() {
            int cap = addCapability(CAP_ID_POWER_MANAGEMENT, 8);
            put(cap + 2, 2, 0x0003);                 // PMC: version 3
            put(cap + 4, 2, 0x0008);                 // PMCSR: D0, No_Soft_Reset
            mask(cap + 4, 2, 0x0103);                // PowerState, PME_En
            w1c(cap + 4, 2, 0x8000);                 // PME_Status
            pmCap = cap;
            return this;
        }

        public ConfigSpace build() {
            if (built) {
                throw new IllegalStateException("already built");
            }
            built = true;
            ConfigSpace space = new ConfigSpace(this);
            space.refreshCachedState();
            return space;
        }

        private int addCapability(int id, int length) {
            int cap = nextCap;
            if (cap + length > 256) {
                throw new IllegalStateException("capabilities do not fit in the 256-byte header");
            }
            put(cap, 1, id);
            put(lastCapNext, 1, cap);
            lastCapNext = cap + 1;
            nextCap = (cap + length + 3) & ~3;
            int status = (value[STATUS] & 0xFF) | STATUS_CAPABILITIES_LIST;
            value[STATUS] = (byte) status;
            return cap;
        }

        private void checkInsideBar(int index, long offset, long length, String what) {
            Bar b = index >= 0 && index < 6 ? bars[index] : null;
            if (b == null || offset < 0 || offset + length > b.size()) {
                throw new IllegalArgumentException(what + " must lie inside a declared BAR (declare the BAR first)");
            }
        }

        private void grow(int size) {
            if (value.length < size) {
                value = Arrays.copyOf(value, size);
                writable = Arrays.copyOf(writable, size);
                w1c = Arrays.copyOf(w1c, size);
            }
        }

        private Builder put(int offset, int length, int data) {
            for (int i = 0; i < length; i++) {
                value[offset + i] = (byte) (data >>> (8 * i));
            }
            return this;
        }

        private void mask(int offset, int length, int bits) {
            for (int i = 0; i < length; i++) {
                writable[offset + i] = (byte) (bits >>> (8 * i));
            }
        }

        private void w1c(int offset, int length, int bits) {
            for (int i = 0; i < length; i++) {
                w1c[offset + i] = (byte) (bits >>> (8 * i));
            }
        }
    }
}
