package io.javadevices.vfiouser.irq;

import io.javadevices.vfiouser.sys.ErrnoException;
import io.javadevices.vfiouser.sys.LibC;
import io.javadevices.vfiouser.sys.SocketStructs;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static io.javadevices.vfiouser.sys.SocketStructs.POLL_EVENTS;
import static io.javadevices.vfiouser.sys.SocketStructs.POLL_FD;
import static io.javadevices.vfiouser.sys.SocketStructs.POLL_REVENTS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * Keeps draining client eventfds while a device reset runs, so the reset, which joins the device's
 * workers, always finishes. One drain is not enough against a hostile client: a drain wakes every
 * writer waiting on the eventfd (fs/eventfd.c {@code eventfd_read}), and a client that keeps a thread
 * of its own blocked writing the maximum value re-saturates the counter before the woken device worker
 * gets its write of 1 in, most of the time. So a thread of this class polls the eventfds and drains
 * each one again whenever it is readable (a blocked writer implies a counter at its maximum, hence
 * POLLIN), until {@link #close} after the reset; every drain gives the worker another chance. Interrupts
 * drained here are lost, as any interrupt raised during a reset may be.
 *
 * <p>Not the hot path: it exists only during a reset, and only if there is an fd to watch (an honest
 * client has none at teardown: its eventfds were de-assigned, and QEMU disables interrupts before it
 * resets a device). The fds it is given are its own (dups of assigned eventfds, and the hostile ones
 * {@link BlockedWriters} kept) and it closes them.
 */
public final class ResetDrain implements AutoCloseable {
    private static final ResetDrain NONE = new ResetDrain();
    private static final long POLLFD_SIZE = SocketStructs.POLLFD.byteSize();

    private final int[] fds;
    private final int wakeFd;
    private final Thread thread;
    private boolean closed;

    private ResetDrain() {
        fds = new int[0];
        wakeFd = -1;
        thread = null;
    }

    private ResetDrain(int[] fds, int wakeFd) {
        this.fds = fds;
        this.wakeFd = wakeFd;
        this.thread = Thread.ofPlatform().daemon().name("vfio-user-irq-reset-drain").start(this::drainUntilWoken);
    }

    /**
     * Starts draining {@code fds} (taking ownership of them). With no fds, or if no thread can be
     * started, returns an instance that does nothing (the fds are then drained once and closed).
     */
    static ResetDrain start(int[] fds) {
        if (fds.length == 0) {
            return NONE;
        }
        int wakeFd = -1;
        try {
            wakeFd = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
            return new ResetDrain(fds, wakeFd);
        } catch (ErrnoException | RuntimeException | OutOfMemoryError e) { // OOM: no native thread
            LibC.closeQuietly(wakeFd);
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment value = arena.allocate(JAVA_LONG);
                for (int fd : fds) {
                    ClientEventfd.unblockWriters(fd, value);
                    LibC.closeQuietly(fd);
                }
            }
            return NONE;
        }
    }

    private void drainUntilWoken() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment value = arena.allocate(JAVA_LONG);
            MemorySegment polls = arena.allocate(POLLFD_SIZE * (fds.length + 1), 8);
            for (int i = 0; i <= fds.length; i++) {
                polls.set(JAVA_INT, i * POLLFD_SIZE + POLL_FD, i < fds.length ? fds[i] : wakeFd);
                polls.set(JAVA_SHORT, i * POLLFD_SIZE + POLL_EVENTS, LibC.POLLIN);
            }
            while (true) {
                LibC.poll(polls, fds.length + 1, -1);
                if (polls.get(JAVA_SHORT, fds.length * POLLFD_SIZE + POLL_REVENTS) != 0) {
                    return; // close(): the reset is over
                }
                for (int i = 0; i < fds.length; i++) {
                    short revents = polls.get(JAVA_SHORT, i * POLLFD_SIZE + POLL_REVENTS);
                    if ((revents & LibC.POLLIN) != 0) {
                        ClientEventfd.unblockWriters(fds[i], value);
                    }
                    if ((revents & (LibC.POLLERR | LibC.POLLHUP | LibC.POLLNVAL)) != 0) {
                        polls.set(JAVA_INT, i * POLLFD_SIZE + POLL_FD, -1); // poll ignores it from now on
                    }
                }
            }
        } catch (ErrnoException | RuntimeException e) {
            // poll failed (ENOMEM): the drain done before the reset remains; nothing more to do
        }
    }

    /** Stops draining (the reset is over) and closes the fds. Idempotent. */
    @Override
    public synchronized void close() {
        if (thread == null || closed) {
            return;
        }
        closed = true;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment one = arena.allocate(JAVA_LONG);
            one.set(JAVA_LONG, 0, 1L);
            LibC.writeNoErrno(wakeFd, one, 8);
        }
        boolean interrupted = false;
        while (thread.isAlive()) {
            try {
                thread.join();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        for (int fd : fds) {
            LibC.closeQuietly(fd);
        }
        LibC.closeQuietly(wakeFd);
    }
}
