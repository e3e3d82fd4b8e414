package io.javadevices.vfiouser.irq;

import io.javadevices.pci.ConfigSpace;
import io.javadevices.pci.InterruptSink;
import io.javadevices.vfiouser.sys.ErrnoException;
import io.javadevices.vfiouser.sys.LibC;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.LongAdder;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.IRQ_ERR;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.IRQ_INTX;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.IRQ_MSI;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.IRQ_MSIX;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.IRQ_REQ;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.NUM_IRQS;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The {@link InterruptSink} the vfio-user server gives its device: one eventfd per interrupt vector,
 * set by the client with DEVICE_SET_IRQS; raising an interrupt is an 8-byte {@code write} of 1 to that
 * eventfd (spec "VFIO_USER_DEVICE_SET_IRQS"; libvfio-user {@code vfu_irq_trigger}).
 *
 * <p><b>Threads.</b> Device worker threads call {@link #signalMsix}, {@link #isMsixVectorUsable} and
 * {@link #setIntx} concurrently; they take no lock for MSI-X: the fd table is an
 * {@link AtomicIntegerArray} read with one volatile load. Only the connection's socket thread changes the
 * table (the methods without "signal" in their name), one message at a time.
 *
 * <p><b>Why replaced eventfds are never {@code close}d directly (fd-number reuse).</b> A worker may load
 * fd N from the table, be descheduled, and write to N after the socket thread replaced it. If N had been
 * closed, the number could meanwhile belong to something else (the next client's socket, a DMA memfd) and
 * the worker would write 8 stray bytes into it. So each vector owns a <em>slot</em>: an fd number this
 * class keeps open for its whole life. Assigning an eventfd {@code dup2}s it onto the slot (atomically
 * replacing whatever the slot referred to) and closes the received number, which no worker ever saw;
 * de-assigning {@code dup2}s a private placeholder eventfd (never read) onto the slot, which releases the
 * client's eventfd. A late writer therefore reaches either the vector's old eventfd — an extra interrupt,
 * which is harmless and also possible with the kernel's vfio — or the placeholder. Readers stay wait-free
 * (no epochs, no reference counts, no grace-period timers); the cost is at most one parked fd number per
 * vector ever used, bounded by the vector count, and released by {@link #close}.
 *
 * <p><b>Gating.</b> An MSI-X vector is usable exactly while the client has an eventfd assigned to it.
 * QEMU owns the MSI-X table, PBA, per-vector and function masking: it disables the index when the guest
 * disables MSI-X and re-points a masked vector's eventfd to one of its own, latching the pending bit
 * itself (QEMU hw/vfio/pci.c {@code vfio_msix_vector_release}, which hw/vfio-user reuses; vfio-user spec
 * "VFIO_USER_DEVICE_SET_IRQS"). So the server never gates on its copy of Message Control; an interrupt for
 * a vector without an eventfd is dropped and counted ({@link #dropped()}). INTx follows the vfio-pci
 * model: level-triggered, auto-masked after each trigger until the client unmasks it (SET_IRQS UNMASK or
 * the resample eventfd).
 *
 * <p><b>Hostile fds.</b> Every fd a client gives (vector or resample fd) must pass {@link ClientEventfd}:
 * an eventfd, made non-blocking. So no interrupt write ever blocks: a write that finds the counter at
 * its maximum fails with EAGAIN, which means the interrupt is already pending; it is counted
 * ({@link #saturated()}) and dropped. No lock is held across a write (INTx decides under
 * {@code intxLock}, then writes after releasing it), so even a slow write cannot stall another thread.
 * A client can still clear O_NONBLOCK on its shared copy and saturate the counter, so that a worker's
 * write blocks (see {@link ClientEventfd}); the hot path does not check for that (it would cost a
 * syscall per interrupt). Instead the server drains the eventfd, which wakes the writer, when a
 * saturated client eventfd leaves its slot (de-assigned, replaced, {@link #releaseAll}, {@link #close})
 * and throughout a device reset, which joins the workers ({@link #drainDuringReset}): see
 * {@link BlockedWriters}.
 */
public final class EventfdInterrupts implements InterruptSink, AutoCloseable {
    /** An 8-byte value of 1, written to eventfds. Global arena: it must outlive any late worker write. */
    private static final MemorySegment ONE = Arena.global().allocate(JAVA_LONG);

    static {
        ONE.set(JAVA_LONG, 0, 1L);
    }

    private final int maxMsixVectors;
    private final int placeholderFd;
    private final VectorTable[] tables = new VectorTable[NUM_IRQS];
    private final LongAdder signalled = new LongAdder();
    private final LongAdder dropped = new LongAdder();
    private final LongAdder saturated = new LongAdder();
    private final ClientFdLog clientFdLog = new ClientFdLog();
    private final Object intxLock = new Object();
    private final MemorySegment scratch = Arena.ofAuto().allocate(JAVA_LONG);
    private final BlockedWriters blockedWriters = new BlockedWriters(clientFdLog);
    private volatile ConfigSpace config;
    private int resampleFd = -1;
    private boolean intxAsserted;
    private boolean intxMasked;
    private boolean closed;

    /** One index's vectors: a slot fd per vector and the live table readers use. */
    private static final class VectorTable {
        final AtomicIntegerArray live;   // slot fd while an eventfd is assigned, else -1
        final int[] slot;                // slot fd number owned by this class, -1 until first use
        final boolean[] holdsClientFd;   // slot currently refers to a client's eventfd
        final int index;                 // IRQ index, for log lines

        VectorTable(int index, int count) {
            this.index = index;
            live = new AtomicIntegerArray(count);
            slot = new int[count];
            holdsClientFd = new boolean[count];
            for (int i = 0; i < count; i++) {
                live.set(i, -1);
                slot[i] = -1;
            }
        }

        int count() {
            return slot.length;
        }
    }

    /**
     * Creates the sink before the device exists (the device receives it in its {@code DeviceContext}).
     *
     * @param maxMsixVectors upper bound on MSI-X vectors (a server limit); the actual count comes from
     *                       the device's config space in {@link #attach}
     * @throws ErrnoException if the placeholder eventfd cannot be created
     */
    public EventfdInterrupts(int maxMsixVectors) throws ErrnoException {
        if (maxMsixVectors < 0 || maxMsixVectors > 2048) {
            throw new IllegalArgumentException("MSI-X vectors 0..2048: " + maxMsixVectors);
        }
        this.maxMsixVectors = maxMsixVectors;
        this.placeholderFd = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
        for (int i = 0; i < NUM_IRQS; i++) {
            tables[i] = new VectorTable(i, 0);
        }
    }

    /**
     * Binds the sink to the device's config space once the device exists: sizes the vector tables
     * (INTx: 1 if the interrupt pin is set; MSI: 0; MSI-X: the capability's table size, capped by the
     * limit; ERR and REQ: 1) and starts following MSI-X enable/mask. Called once, before any client.
     */
    public synchronized void attach(ConfigSpace configSpace) {
        if (config != null) {
            throw new IllegalStateException("already attached");
        }
        int pin = configSpace.read(ConfigSpace.INTERRUPT_PIN, 1);
        tables[IRQ_INTX] = new VectorTable(IRQ_INTX, pin != 0 ? 1 : 0);
        tables[IRQ_MSI] = new VectorTable(IRQ_MSI, 0);
        int msix = Math.min(configSpace.msixVectorCount(), maxMsixVectors);
        tables[IRQ_MSIX] = new VectorTable(IRQ_MSIX, msix);
        tables[IRQ_ERR] = new VectorTable(IRQ_ERR, 1);
        tables[IRQ_REQ] = new VectorTable(IRQ_REQ, 1);
        config = configSpace;
    }

    /** Number of vectors of an IRQ index (0 = that kind of interrupt is not supported). */
    public int vectorCount(int index) {
        return index >= 0 && index < NUM_IRQS ? tables[index].count() : 0;
    }

    // ================================================================== device side (worker threads)

    @Override
    public void signalMsix(int vector) {
        VectorTable t = tables[IRQ_MSIX];
        if (vector < 0 || vector >= t.count()) {
            dropped.increment();
            return;
        }
        write(t, vector);
    }

    private void write(VectorTable t, int vector) {
        int fd = t.live.get(vector);
        if (fd < 0) {
            dropped.increment();
            return;
        }
        // Non-blocking (ClientEventfd): a failure is EAGAIN, the counter is at its maximum, so the
        // interrupt is already pending and the reader will see it (eventfd(2)).
        if (LibC.writeNoErrno(fd, ONE, 8) == 8) {
            signalled.increment();
        } else {
            saturated.increment();
        }
    }

    @Override
    public boolean isMsixVectorUsable(int vector) {
        VectorTable t = tables[IRQ_MSIX];
        return vector >= 0 && vector < t.count() && t.live.get(vector) >= 0;
    }

    @Override
    public void setIntx(boolean asserted) {
        VectorTable t = tables[IRQ_INTX];
        if (t.count() == 0) {
            return;
        }
        boolean fire;
        synchronized (intxLock) {
            boolean rising = asserted && !intxAsserted;
            intxAsserted = asserted;
            fire = rising && takeIntxEdge();
        }
        if (fire) {
            write(t, 0); // after releasing intxLock: see "Hostile fds"
        }
    }

    /**
     * With intxLock held: true if INTx is to be signalled now (asserted, unmasked, not disabled, an
     * eventfd assigned), and then auto-masks it (vfio-pci AUTOMASKED). The caller writes after
     * releasing the lock; if the eventfd is de-assigned in between, {@link #write} drops the interrupt.
     */
    private boolean takeIntxEdge() {
        ConfigSpace c = config;
        if (intxMasked || !intxAsserted || (c != null && c.isIntxDisabled()) || tables[IRQ_INTX].live.get(0) < 0) {
            return false;
        }
        intxMasked = true;
        return true;
    }

    /** Unmasks INTx and re-fires it if the line is still asserted; no lock held across the write. */
    private void unmaskIntx() {
        boolean fire;
        synchronized (intxLock) {
            intxMasked = false;
            fire = takeIntxEdge();
        }
        if (fire) {
            write(tables[IRQ_INTX], 0);
        }
    }

    // ================================================================== client side (socket thread)

    /**
     * Assigns eventfds to vectors {@code start..start+count-1} (DATA_EVENTFD + ACTION_TRIGGER). Takes
     * ownership of every fd in {@code fds[0..count)}, also on failure. All or nothing: if any fd is not
     * an eventfd ({@link ClientEventfd}), none is assigned.
     *
     * @return 0, or an errno if the range is invalid, an fd is refused or a call failed (all fds then closed)
     */
    public int assign(int index, int start, int count, int[] fds) {
        for (int i = 0; i < count && i < fds.length; i++) {
            if (!acceptable(fds[i], index, start + i)) {
                closeAll(fds, count);
                return io.javadevices.vfiouser.sys.Errno.EINVAL;
            }
        }
        int error = assignChecked(index, start, count, fds);
        if (error == 0 && index == IRQ_INTX) {
            unmaskIntx(); // a line asserted before the eventfd arrived
        }
        return error;
    }

    private synchronized int assignChecked(int index, int start, int count, int[] fds) {
        VectorTable t = table(index);
        if (t == null || !inRange(t, start, count) || closed) {
            closeAll(fds, count);
            return io.javadevices.vfiouser.sys.Errno.EINVAL;
        }
        for (int i = 0; i < count; i++) {
            int vector = start + i;
            int fd = fds[i];
            fds[i] = -1;
            int old = -1; // the replaced client eventfd, held to drain it once it has left the slot
            try {
                if (t.slot[vector] < 0) {
                    // First use: the received number becomes the slot. No worker has seen it yet.
                    t.slot[vector] = fd;
                } else {
                    old = t.holdsClientFd[vector] ? blockedWriters.hold(t.slot[vector], index, vector) : -1;
                    LibC.dup2(fd, t.slot[vector]); // atomically re-points the slot, releasing the old file
                    LibC.close(fd);
                }
            } catch (ErrnoException e) {
                LibC.closeQuietly(fd);
                for (int j = i + 1; j < count; j++) {
                    LibC.closeQuietly(fds[j]);
                    fds[j] = -1;
                }
                return e.errno();
            } finally {
                blockedWriters.letGo(old, index, vector);
            }
            t.holdsClientFd[vector] = true;
            t.live.set(vector, t.slot[vector]);
        }
        return 0;
    }

    /** Checks a client's interrupt fd; a refusal is counted and logged (once per session). */
    private boolean acceptable(int fd, int index, int vector) {
        String refusal = ClientEventfd.refusal(fd);
        if (refusal != null) {
            clientFdLog.refused(index, vector, refusal);
        }
        return refusal == null;
    }

    /** De-assigns vectors {@code start..start+count-1} (DATA_EVENTFD with no fds). */
    public synchronized int deassign(int index, int start, int count) {
        VectorTable t = table(index);
        if (t == null || !inRange(t, start, count)) {
            return io.javadevices.vfiouser.sys.Errno.EINVAL;
        }
        for (int v = start; v < start + count; v++) {
            release(t, v);
        }
        return 0;
    }

    /** Disables a whole index (DATA_NONE + ACTION_TRIGGER with count 0). */
    public synchronized int disable(int index) {
        VectorTable t = table(index);
        if (t == null) {
            return io.javadevices.vfiouser.sys.Errno.EINVAL;
        }
        for (int v = 0; v < t.count(); v++) {
            release(t, v);
        }
        if (index == IRQ_INTX) {
            replaceResampleFd(-1);
        }
        return 0;
    }

    private void release(VectorTable t, int vector) {
        t.live.set(vector, -1);
        if (t.holdsClientFd[vector]) {
            int old = blockedWriters.hold(t.slot[vector], t.index, vector); // checked once it left the slot
            try {
                LibC.dup2(placeholderFd, t.slot[vector]); // drops the client's eventfd, keeps the number
            } catch (ErrnoException e) {
                throw new IllegalStateException("dup2 onto an interrupt slot failed", e);
            } finally {
                blockedWriters.letGo(old, t.index, vector);
            }
            t.holdsClientFd[vector] = false;
        }
    }

    /**
     * Wakes a worker a hostile client blocked writing to an assigned eventfd now, and keeps draining the
     * assigned eventfds and those {@link BlockedWriters} kept until the returned drain is closed. The connection wraps every device reset in it: a reset joins the device's workers and
     * would otherwise wait forever on such a worker. The drained interrupts are lost, which is fine
     * there: the reset discards the device state that raised them (and QEMU disables the device's
     * interrupts before it resets it, hw/vfio/pci.c {@code vfio_pci_pre_reset}, so normally none is
     * assigned). Vectors stay assigned.
     */
    public synchronized ResetDrain drainDuringReset() {
        int[] dups = new int[clientEventfds()];
        int n = 0;
        for (VectorTable t : tables) {
            for (int v = 0; v < t.count(); v++) {
                if (t.holdsClientFd[v]) {
                    blockedWriters.wake(t.slot[v], t.index, v);
                    try {
                        dups[n] = LibC.dup(t.slot[v]); // the drain's own fd: the slot may change later
                        n++;
                    } catch (ErrnoException e) {
                        // no fd to spare: this eventfd was checked once
                    }
                }
            }
        }
        return blockedWriters.duringReset(dups, n);
    }

    /** Fires vectors by request of the client (DATA_NONE or DATA_BOOL + ACTION_TRIGGER). */
    public int trigger(int index, int start, int count) {
        VectorTable t = table(index);
        if (t == null || !inRange(t, start, count)) {
            return io.javadevices.vfiouser.sys.Errno.EINVAL;
        }
        for (int v = start; v < start + count; v++) {
            write(t, v);
        }
        return 0;
    }

    /** INTx ACTION_MASK. MSI-X/ERR/REQ masking is accepted and ignored (QEMU masks MSI-X itself). */
    public int mask(int index, int start, int count) {
        VectorTable t = table(index);
        if (t == null || !inRange(t, start, count)) {
            return io.javadevices.vfiouser.sys.Errno.EINVAL;
        }
        if (index == IRQ_INTX && count > 0) {
            synchronized (intxLock) {
                intxMasked = true;
            }
        }
        return 0;
    }

    /** INTx ACTION_UNMASK (the guest's EOI): re-fires if the line is still asserted. */
    public int unmask(int index, int start, int count) {
        VectorTable t = table(index);
        if (t == null || !inRange(t, start, count)) {
            return io.javadevices.vfiouser.sys.Errno.EINVAL;
        }
        if (index == IRQ_INTX && count > 0) {
            unmaskIntx();
        }
        return 0;
    }

    /**
     * Sets (or with -1 clears) the INTx resample eventfd (ACTION_UNMASK + DATA_EVENTFD): the client
     * signals it when the guest acknowledges INTx; the socket thread polls it alongside the socket and
     * calls {@link #resampleEvents}. Takes ownership of {@code fd}; an fd {@link ClientEventfd} refuses
     * is closed and the previous resample fd stays.
     *
     * @return 0, or EINVAL if {@code fd} is not an eventfd
     */
    public int setResampleFd(int fd) {
        if (fd >= 0 && !acceptable(fd, IRQ_INTX, -1)) {
            LibC.closeQuietly(fd);
            return io.javadevices.vfiouser.sys.Errno.EINVAL;
        }
        replaceResampleFd(fd);
        return 0;
    }

    private synchronized void replaceResampleFd(int fd) {
        int old = resampleFd;
        resampleFd = fd;
        // Only the socket thread uses this fd, so a plain close is safe here.
        LibC.closeQuietly(old);
    }

    /** The resample eventfd, or -1. Socket thread only. */
    public synchronized int resampleFd() {
        return resampleFd;
    }

    /**
     * Handles poll(2)'s {@code revents} for the resample fd. Socket thread only. POLLIN: consume the
     * counter (never blocking, whatever the client did to O_NONBLOCK) and treat it as an unmask. POLLHUP, POLLERR
     * or POLLNVAL: the fd can never become quiet again (poll would report it at once, forever, and the
     * session thread would spin), so it is de-assigned, counted and logged once; INTx stays usable
     * through SET_IRQS UNMASK. An eventfd only reports POLLERR if its counter overflowed.
     */
    public void resampleEvents(short revents) {
        if ((revents & LibC.POLLIN) != 0) {
            int fd = resampleFd();
            if (fd >= 0) {
                // Not read(2): the client shares this description, may clear O_NONBLOCK and consume the
                // counter between our poll and the read, and a blocking read would hang the session
                // thread. unblockWriters sets O_NONBLOCK again and reads with RWF_NOWAIT.
                ClientEventfd.unblockWriters(fd, scratch);
            }
            unmask(IRQ_INTX, 0, 1);
        }
        if ((revents & (LibC.POLLHUP | LibC.POLLERR | LibC.POLLNVAL)) != 0) {
            replaceResampleFd(-1);
            clientFdLog.resampleFailed(revents);
        }
    }

    /**
     * Releases every client eventfd (client disconnected: spec "Client Disconnection"). Vectors become
     * unassigned; the device keeps running and its interrupts are dropped until a new client sets them.
     */
    public synchronized void releaseAll() {
        for (VectorTable t : tables) {
            for (int v = 0; v < t.count(); v++) {
                release(t, v);
            }
        }
        replaceResampleFd(-1);
        synchronized (intxLock) {
            intxMasked = false;
        }
        clientFdLog.newSession();
    }

    /**
     * Closes the per-vector slot fds after {@link #releaseAll()}, once the device is quiescent (after its
     * reset: no worker can still hold a slot number it loaded earlier), so a finished client leaves no fd
     * behind. Socket/connection thread only.
     */
    public synchronized void closeSlots() {
        blockedWriters.closeKept();
        for (VectorTable t : tables) {
            for (int v = 0; v < t.count(); v++) {
                if (t.live.get(v) < 0 && !t.holdsClientFd[v] && t.slot[v] >= 0) {
                    LibC.closeQuietly(t.slot[v]);
                    t.slot[v] = -1;
                }
            }
        }
    }

    /** Number of client eventfds currently held (resample fd included). */
    public synchronized int clientEventfds() {
        int n = resampleFd >= 0 ? 1 : 0;
        for (VectorTable t : tables) {
            for (boolean held : t.holdsClientFd) {
                if (held) {
                    n++;
                }
            }
        }
        return n;
    }

    /** Number of vectors of {@code index} that currently have an eventfd. */
    public int assignedVectors(int index) {
        VectorTable t = table(index);
        if (t == null) {
            return 0;
        }
        int n = 0;
        for (int v = 0; v < t.count(); v++) {
            if (t.live.get(v) >= 0) {
                n++;
            }
        }
        return n;
    }

    /** Interrupts written to an eventfd so far. */
    public long signalled() {
        return signalled.sum();
    }

    /** Interrupts dropped so far (no eventfd, MSI-X disabled, bad vector). */
    public long dropped() {
        return dropped.sum();
    }

    /** Interrupt writes that found the eventfd counter at its maximum (EAGAIN: already pending). */
    public long saturated() {
        return saturated.sum();
    }

    /** Interrupt fds refused so far (not an eventfd, see {@link ClientEventfd}). */
    public long refusedFds() {
        return clientFdLog.refused();
    }

    /** Client eventfds found made blocking again or saturated when the server drained them. */
    public long reblockedFds() {
        return clientFdLog.reblocked();
    }

    /** Resample fds de-assigned because poll reported POLLHUP, POLLERR or POLLNVAL. */
    public long resampleFailures() {
        return clientFdLog.resampleFailures();
    }

    private VectorTable table(int index) {
        return index >= 0 && index < NUM_IRQS ? tables[index] : null;
    }

    private static boolean inRange(VectorTable t, int start, int count) {
        return start >= 0 && count >= 0 && (long) start + count <= t.count();
    }

    private static void closeAll(int[] fds, int count) {
        for (int i = 0; i < count && i < fds.length; i++) {
            LibC.closeQuietly(fds[i]);
            fds[i] = -1;
        }
    }

    /**
     * Releases all fds, slots included. Call only after the device is closed (no worker may signal any
     * more: a late write could otherwise hit a reused fd number). Idempotent.
     */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        releaseAll();
        blockedWriters.closeKept();
        closed = true;
        for (VectorTable t : tables) {
            for (int v = 0; v < t.count(); v++) {
                t.live.set(v, -1);
                LibC.closeQuietly(t.slot[v]);
                t.slot[v] = -1;
            }
        }
        LibC.closeQuietly(placeholderFd);
    }
}
