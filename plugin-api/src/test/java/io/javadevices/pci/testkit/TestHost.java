package io.javadevices.pci.testkit;

import io.javadevices.pci.Bar;
import io.javadevices.pci.ConfigSpace;
import io.javadevices.pci.DeviceContext;
import io.javadevices.pci.DirectBarMemory;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.MmioAccess;
import io.javadevices.pci.MsixTable;
import io.javadevices.pci.PciDevice;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Function;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * A small "VMM in a JUnit test": guest RAM (heap or direct memory) at guest-physical address 0, an
 * {@link InterruptRecorder}, and helpers that do what firmware and a guest driver do to a PCI device —
 * size and program BARs, enable memory decoding and bus mastering, enable MSI-X, read and write BARs —
 * all through the public plugin API only, so that any device that works here works in any host.
 *
 * <p>Usage: {@code try (TestHost host = TestHost.heap(16 << 20)) { var dev = host.attach(ctx -> new MyDevice(ctx)); ... }}
 *
 * <p>Direct BAR memory ({@link DirectBarMemory}): the host grants every window a device asks for and,
 * like a VMM that mapped it into the guest, sends {@link #mmioWrite}/{@link #mmioRead} inside a window
 * straight to that memory, never to the handler. {@link #trapDirectWindows()} makes it behave like a
 * client that declined the mapping (accesses go to the handler, which must store them itself).
 *
 * <p>Not thread-safe for configuration; BAR and memory accesses may come from several test threads
 * (the device sees them as a host would: it must tolerate concurrent MMIO only if the host says so,
 * so tests should issue MMIO from one thread at a time, like {@link #mmioLock()} helps with).
 */
public final class TestHost implements AutoCloseable {
    /** Where the test host places BARs: above guest RAM, in the 64-bit MMIO window. */
    public static final long MMIO_BASE = 0xE000_0000L;

    private final Arena arena;
    private final GuestMemory memory;
    private final long ramSize;
    private final InterruptRecorder interrupts = new InterruptRecorder();
    private final Object mmioLock = new Object();
    private long nextFree = 0x1000; // keep page 0 unused so that address 0 bugs show up
    private PciDevice device;
    private MsixTable msixTable;
    private final Arena windowArena = Arena.ofShared();
    private final List<Window> windows = new ArrayList<>();
    private boolean trapWindows;

    /** One granted direct window; {@link #replaceDirectWindows()} swaps its memory. */
    private static final class Window implements DirectBarMemory.Window {
        final int bar;
        final long offset;
        volatile MemorySegment memory;

        Window(int bar, long offset, MemorySegment memory) {
            this.bar = bar;
            this.offset = offset;
            this.memory = memory;
        }

        @Override
        public MemorySegment memory() {
            return memory;
        }

        boolean covers(int b, long o, int size) {
            return b == bar && o >= offset && o + size <= offset + memory.byteSize();
        }
    }

    private TestHost(long ramSize, boolean direct) {
        if (ramSize <= 0 || ramSize % 4096 != 0) {
            throw new IllegalArgumentException("RAM size must be a positive multiple of 4096");
        }
        this.ramSize = ramSize;
        MemorySegment ram;
        if (direct) {
            arena = Arena.ofShared();
            ram = arena.allocate(ramSize, 4096);
        } else {
            arena = null;
            // long[] backing gives 8-byte alignment, so 32-bit atomic accesses work on heap RAM too.
            if (ramSize / 8 > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("heap RAM is limited to 16 GiB; use direct()");
            }
            ram = MemorySegment.ofArray(new long[(int) (ramSize / 8)]);
        }
        this.memory = GuestMemory.of(0, ram);
    }

    /** Guest RAM on the Java heap. */
    public static TestHost heap(long ramBytes) {
        return new TestHost(ramBytes, false);
    }

    /** Guest RAM in native memory (like a VMM's mmap'd RAM). */
    public static TestHost direct(long ramBytes) {
        return new TestHost(ramBytes, true);
    }

    public GuestMemory memory() {
        return memory;
    }

    public long ramSize() {
        return ramSize;
    }

    public InterruptRecorder interrupts() {
        return interrupts;
    }

    public DeviceContext context() {
        return new DeviceContext(memory, interrupts, this::shareWindow);
    }

    private synchronized Optional<DirectBarMemory.Window> shareWindow(int bar, long offset, long size) {
        DirectBarMemory.checkWindow(bar, offset, size);
        Window w = new Window(bar, offset, windowArena.allocate(size, DirectBarMemory.PAGE));
        windows.add(w);
        return Optional.of(w);
    }

    /**
     * What a host does between two guests ({@link DirectBarMemory}, "fresh memory per session"): gives
     * every direct window new zeroed memory, then resets the device and sets it up again as firmware does
     * ({@link #attach}: BARs, memory decoding, bus mastering). The old memory stays allocated (a
     * former guest's mapping) until {@link #close()}, so a test can store into it and check that the
     * device no longer sees those stores.
     */
    public void replaceDirectWindows() {
        synchronized (this) {
            for (Window w : windows) {
                w.memory = windowArena.allocate(w.memory.byteSize(), DirectBarMemory.PAGE);
            }
        }
        synchronized (mmioLock) {
            device().reset();
        }
        boot();
    }

    /**
     * From now on, BAR accesses inside direct windows go to the BAR handlers, as when a vfio-user
     * client declines (or fails) to map a sparse area and falls back to messages.
     */
    public void trapDirectWindows() {
        trapWindows = true;
    }

    /** The direct window memory that holds BAR {@code bar} offset {@code offset}, if the device has one. */
    public synchronized Optional<MemorySegment> directWindow(int bar, long offset) {
        Window w = window(bar, offset, 1);
        return w == null ? Optional.empty() : Optional.of(w.memory.asSlice(offset - w.offset));
    }

    /** Where a guest access of {@code size} bytes goes when it lands in a mapped window, else null. */
    private synchronized MemorySegment windowFor(int bar, long offset, int size) {
        Window w = trapWindows ? null : window(bar, offset, size);
        return w == null ? null : w.memory.asSlice(offset - w.offset, size);
    }

    private Window window(int bar, long offset, int size) {
        for (Window w : windows) {
            if (w.covers(bar, offset, size)) {
                return w;
            }
        }
        return null;
    }

    /**
     * Creates the device with this host's context, then does what firmware does: sizes each BAR by
     * writing all ones, assigns addresses above RAM, enables memory decoding and bus mastering.
     */
    public <D extends PciDevice> D attach(Function<DeviceContext, D> factory) {
        if (device != null) {
            throw new IllegalStateException("a device is already attached");
        }
        D created = factory.apply(context());
        this.device = created;
        boot();
        return created;
    }

    private void boot() {
        programBars();
        ConfigSpace config = device.config();
        config.write(ConfigSpace.COMMAND, 2, ConfigSpace.COMMAND_MEMORY | ConfigSpace.COMMAND_BUS_MASTER);
        interrupts.follow(config, msixTable);
    }

    /** The attached device. */
    public PciDevice device() {
        if (device == null) {
            throw new IllegalStateException("no device attached");
        }
        return device;
    }

    /**
     * Tells the recorder to apply the device's MSI-X table masks (for devices that keep their table
     * in a BAR with {@link MsixTable}). Without it, only the config-space gating applies.
     */
    public void useMsixTable(MsixTable table) {
        this.msixTable = table;
        interrupts.follow(device().config(), table);
    }

    private void programBars() {
        ConfigSpace config = device.config();
        long next = MMIO_BASE;
        for (Bar bar : config.bars()) {
            int reg = ConfigSpace.BAR0 + 4 * bar.index();
            config.write(reg, 4, 0xFFFF_FFFF);
            long mask = config.read(reg, 4) & 0xFFFF_FFFFL;
            if (bar.kind() == Bar.Kind.MEMORY64) {
                config.write(reg + 4, 4, 0xFFFF_FFFF);
                mask |= (config.read(reg + 4, 4) & 0xFFFF_FFFFL) << 32;
            } else {
                mask |= 0xFFFF_FFFF_0000_0000L;
            }
            long size = ~(mask & ~(bar.kind() == Bar.Kind.IO ? 0x3L : 0xFL)) + 1;
            if (size != bar.size()) {
                throw new AssertionError("BAR" + bar.index() + " sizes as " + size + " but declares " + bar.size());
            }
            long address = (next + size - 1) & ~(size - 1);
            next = address + size;
            config.write(reg, 4, (int) address);
            if (bar.kind() == Bar.Kind.MEMORY64) {
                config.write(reg + 4, 4, (int) (address >>> 32));
            }
        }
    }

    /** Sets MSI-X Enable (and clears Function Mask) in the device's MSI-X capability. */
    public void enableMsix() {
        setMsixControl(ConfigSpace.MSIX_CONTROL_ENABLE);
    }

    /** Clears MSI-X Enable. */
    public void disableMsix() {
        setMsixControl(0);
    }

    /** Writes the MSI-X Message Control bits (enable / function mask) as a guest would. */
    public void setMsixControl(int bits) {
        ConfigSpace config = device().config();
        int cap = config.msixCapabilityOffset();
        if (cap == 0) {
            throw new IllegalStateException("device has no MSI-X capability");
        }
        config.write(cap + 2, 2, bits);
    }

    public int configRead(int offset, int size) {
        return device().config().read(offset, size);
    }

    public void configWrite(int offset, int size, int value) {
        device().config().write(offset, size, value);
    }

    /** Guest-physical address the host assigned to a BAR. */
    public long barAddress(int bar) {
        return device().config().barAddress(bar);
    }

    /** A lock tests can hold to keep multi-step MMIO sequences from interleaving across threads. */
    public Object mmioLock() {
        return mmioLock;
    }

    /** Reads {@code size} (1/2/4/8) bytes from a BAR, checked against the BAR like a bus would. */
    public long mmioRead(int barIndex, long offset, int size) {
        Bar bar = barOrThrow(barIndex);
        if (!MmioAccess.inside(bar, offset, size)) {
            throw new IllegalArgumentException("MMIO read outside BAR" + barIndex);
        }
        MemorySegment direct = windowFor(barIndex, offset, size);
        if (direct != null) {
            return size == 4 ? GuestMemory.loadIntAcquire(direct, 0) & 0xFFFF_FFFFL : littleEndian(direct, size);
        }
        synchronized (mmioLock) {
            return bar.handler().read(offset, size);
        }
    }

    /** Writes {@code size} (1/2/4/8) bytes to a BAR. */
    public void mmioWrite(int barIndex, long offset, int size, long value) {
        Bar bar = barOrThrow(barIndex);
        if (!MmioAccess.inside(bar, offset, size)) {
            throw new IllegalArgumentException("MMIO write outside BAR" + barIndex);
        }
        MemorySegment direct = windowFor(barIndex, offset, size);
        if (direct != null) {
            // A guest store to mapped memory: no callback. 32-bit stores are release stores, as an x86
            // store after the guest's wmb() is ordered after its earlier SQE writes.
            if (size == 4) {
                GuestMemory.storeIntRelease(direct, 0, (int) value);
            } else {
                for (int i = 0; i < size; i++) {
                    direct.set(JAVA_BYTE, i, (byte) (value >>> (8 * i)));
                }
                GuestMemory.fullFence();
            }
            return;
        }
        synchronized (mmioLock) {
            bar.handler().write(offset, size, value);
        }
    }

    private static long littleEndian(MemorySegment s, int size) {
        long v = 0;
        for (int i = 0; i < size; i++) {
            v |= (s.get(JAVA_BYTE, i) & 0xFFL) << (8 * i);
        }
        return v;
    }

    public int mmioRead32(int bar, long offset) {
        return (int) mmioRead(bar, offset, 4);
    }

    public long mmioRead64(int bar, long offset) {
        return mmioRead(bar, offset, 8);
    }

    public void mmioWrite32(int bar, long offset, int value) {
        mmioWrite(bar, offset, 4, value & 0xFFFF_FFFFL);
    }

    public void mmioWrite64(int bar, long offset, long value) {
        mmioWrite(bar, offset, 8, value);
    }

    private Bar barOrThrow(int index) {
        Bar bar = device().config().bar(index);
        if (bar == null) {
            throw new IllegalArgumentException("no BAR" + index);
        }
        return bar;
    }

    /**
     * Allocates {@code bytes} of guest RAM (zeroed) aligned to {@code alignment} (a power of two) and
     * returns its guest-physical address. A bump allocator: memory is never freed.
     */
    public synchronized long allocate(long bytes, long alignment) {
        if (Long.bitCount(alignment) != 1 || bytes <= 0) {
            throw new IllegalArgumentException("bad allocation " + bytes + "/" + alignment);
        }
        long address = (nextFree + alignment - 1) & ~(alignment - 1);
        if (address + bytes > ramSize) {
            throw new IllegalStateException("test guest RAM exhausted (" + ramSize + " bytes)");
        }
        nextFree = address + bytes;
        try {
            memory.fill(address, bytes, (byte) 0);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
        return address;
    }

    /** Allocates whole 4 KiB pages. */
    public long allocatePages(int pages) {
        return allocate(4096L * pages, 4096);
    }

    /** Closes the device and frees direct guest RAM. */
    @Override
    public void close() {
        if (device != null) {
            device.close();
        }
        if (arena != null) {
            memory.unmapAll();
            arena.close();
        }
        windowArena.close();
    }
}
