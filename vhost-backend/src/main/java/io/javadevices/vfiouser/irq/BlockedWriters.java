package io.javadevices.vfiouser.irq;

import io.javadevices.vfiouser.sys.ErrnoException;
import io.javadevices.vfiouser.sys.LibC;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Wakes device workers a hostile client blocked in an interrupt write, for {@link EventfdInterrupts}.
 * A client can clear O_NONBLOCK on the eventfd it shares with the server and saturate the counter (see
 * {@link ClientEventfd}); the server does not check for that per interrupt (a syscall on the hot path),
 * it drains the eventfd whenever it would otherwise lose track of, or wait for, such a worker:
 * <ul>
 *   <li>when a client eventfd leaves its vector's slot: it is {@link #hold held} (a dup) across the
 *       {@code dup2} that replaces it and {@link #letGo drained} right after, when no new writer can
 *       reach it any more, if its counter is at the maximum (only then can a writer be blocked); without
 *       that a worker blocked on it would stay blocked for good;</li>
 *   <li>throughout a device reset, which joins the workers ({@link #duringReset}).</li>
 * </ul>
 * One drain wakes every writer (fs/eventfd.c {@code eventfd_read}), but a client thread blocked writing
 * the maximum value may win the drained counter back before the worker's write of 1. So an eventfd
 * found hostile (made blocking again, or saturated) when it leaves its slot is kept as a dup, up to
 * {@value #KEPT_MAX} of them, for the next reset's {@link ResetDrain} to drain until the workers are
 * through; the reset then closes them. QEMU's eventfds are never hostile, so nothing is kept for it.
 * Socket thread only (the session's or the closing server's), never the hot path.
 */
final class BlockedWriters {
    /** Hostile eventfds kept after they left their slot; more within one reset cycle are drained once. */
    static final int KEPT_MAX = 64;

    private final ClientFdLog log;
    private final MemorySegment drained = Arena.ofAuto().allocate(JAVA_LONG);
    private final int[] kept = new int[KEPT_MAX];
    private int keptCount;

    BlockedWriters(ClientFdLog log) {
        this.log = log;
    }

    /**
     * Wakes a worker blocked writing to the client eventfd {@code fd} (of {@code index}/{@code vector})
     * if one can be: only when the counter is at its maximum is it drained (its pending interrupt is
     * then lost). Any other counter is left alone, because QEMU re-points a vector's eventfd on every
     * MSI-X mask and unmask (hw/vfio/pci.c {@code vfio_msix_vector_release}, {@code
     * vfio_msix_vector_do_use}) and still delivers what is pending on the old one. Counts and logs a
     * hostile eventfd.
     *
     * @return true if it was hostile: O_NONBLOCK cleared again, or the counter at its maximum
     */
    synchronized boolean wake(int fd, int index, int vector) {
        boolean blockingAgain = ClientEventfd.isBlockingAgain(fd);
        boolean saturated = ClientEventfd.isSaturated(fd);
        if (saturated) {
            ClientEventfd.unblockWriters(fd, drained);
        }
        if (blockingAgain || saturated) {
            log.reblocked(index, vector);
        }
        return blockingAgain || saturated;
    }

    /**
     * Holds on to the client eventfd in a slot that is about to be re-pointed ({@code dup2}) elsewhere.
     *
     * @return a dup of {@code slotFd} for {@link #letGo}, or -1 if no fd is left (then it is drained now,
     *         while the slot still refers to it: a worker writing before the dup2 can still block)
     */
    synchronized int hold(int slotFd, int index, int vector) {
        try {
            return LibC.dup(slotFd);
        } catch (ErrnoException e) {
            wake(slotFd, index, vector);
            return -1;
        }
    }

    /**
     * {@link #wake Wakes} a worker blocked on a {@link #hold held} eventfd that has left its slot, and
     * keeps the eventfd if it was hostile (a client thread may win the drained counter back, or saturate
     * it later), else closes it. Ignores -1.
     */
    synchronized void letGo(int held, int index, int vector) {
        if (held < 0) {
            return;
        }
        if (wake(held, index, vector) && keptCount < KEPT_MAX) {
            kept[keptCount++] = held;
        } else {
            LibC.closeQuietly(held);
        }
    }

    /**
     * Starts draining, until the returned drain is closed, {@code assigned} (dups of the assigned
     * eventfds, drained once already; ownership passes) and the kept eventfds (which the drain closes).
     */
    synchronized ResetDrain duringReset(int[] assigned, int count) {
        int[] fds = Arrays.copyOf(assigned, count + keptCount);
        System.arraycopy(kept, 0, fds, count, keptCount);
        keptCount = 0;
        return ResetDrain.start(fds);
    }

    /** Closes the kept eventfds (once no worker can be blocked on them: the device is reset or closed). */
    synchronized void closeKept() {
        for (int i = 0; i < keptCount; i++) {
            LibC.closeQuietly(kept[i]);
        }
        keptCount = 0;
    }
}
