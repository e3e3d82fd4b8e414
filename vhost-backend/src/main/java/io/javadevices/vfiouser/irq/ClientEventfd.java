package io.javadevices.vfiouser.irq;

import io.javadevices.vfiouser.sys.Errno;
import io.javadevices.vfiouser.sys.ErrnoException;
import io.javadevices.vfiouser.sys.LibC;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Decides whether an fd a client sent with DEVICE_SET_IRQS may serve as an interrupt fd, and makes
 * writes to it non-blocking. The server writes interrupt fds from device worker threads and from the
 * session thread; an fd that can block there (a full pipe, a socket, a FIFO, an eventfd whose counter
 * a client pre-loaded to its maximum) would stall the device or the whole session. Socket thread only;
 * not the hot path (it runs once per SET_IRQS).
 *
 * <ol>
 *   <li><b>Only eventfds.</b> The spec's DATA_EVENTFD carries eventfds, and QEMU sends nothing else.
 *       {@code /proc/self/fd/N} of an eventfd reads {@code anon_inode:[eventfd]} (fs/eventfd.c creates it
 *       as the anonymous inode {@code "[eventfd]"}); a regular file's link is an absolute path, a
 *       pipe's {@code pipe:[ino]}, a socket's {@code socket:[ino]}, so no other fd can match it.</li>
 *   <li><b>No EFD_SEMAPHORE.</b> A semaphore eventfd reads 1 per read(2): a client that pre-loads one
 *       used as the INTx resample fd would make the session thread loop 2^64 times. QEMU's
 *       {@code event_notifier_init} never sets it. Older kernels whose fdinfo lacks the
 *       {@code eventfd-semaphore} line cannot be checked (the fd is then accepted).</li>
 *   <li><b>O_NONBLOCK.</b> Set on the open file description, which the client shares. QEMU creates its
 *       eventfds with {@code EFD_NONBLOCK} already ({@code event_notifier_init}), so this changes nothing
 *       for it; for any other client it turns "counter at its maximum" into EAGAIN, which the writers
 *       treat as "interrupt already pending" (eventfd(2): a write that would overflow the counter
 *       blocks, or fails with EAGAIN on a non-blocking fd).</li>
 * </ol>
 *
 * <p><b>Limit, and how the server never waits on it.</b> Because the file description is shared, a
 * client could clear O_NONBLOCK again with its own {@code fcntl} after SET_IRQS and then saturate the
 * counter. The server cannot get a private description (an eventfd cannot be reopened through
 * {@code /proc/self/fd}: ENXIO) nor a per-call non-blocking write (eventfd has no {@code write_iter}, so
 * {@code pwritev2(RWF_NOWAIT)} fails with EOPNOTSUPP), and a check before every interrupt write would
 * cost a syscall on the hot path. Such a client can therefore stall a device worker writing to its own
 * eventfd; no lock is held across that write, so no other thread waits on it, except whoever waits for
 * that worker: a device reset joins its workers. So when a saturated eventfd leaves a vector
 * (de-assigned, replaced, client gone, server closed) and during a device reset, the server
 * {@link #unblockWriters drains} it, which wakes a blocked writer ({@link BlockedWriters}).
 */
final class ClientEventfd {
    private static final String EVENTFD_LINK = "anon_inode:[eventfd]";
    private static final String SEMAPHORE_LINE = "eventfd-semaphore:";
    private static final String COUNT_LINE = "eventfd-count:";
    /** The largest value an eventfd counter holds (eventfd(2)); a write of 1 then waits. */
    private static final long COUNTER_MAX = 0xFFFF_FFFF_FFFF_FFFEL;

    private ClientEventfd() {
    }

    /**
     * Checks {@code fd} and, if it is acceptable, makes it non-blocking. Never closes it.
     *
     * @return null if the fd may be used as an interrupt fd, else why not (for the log)
     */
    static String refusal(int fd) {
        String target;
        try {
            target = Files.readSymbolicLink(Path.of("/proc/self/fd/" + fd)).toString();
        } catch (IOException | RuntimeException e) {
            return "its type cannot be determined (" + e.getMessage() + ")";
        }
        if (!EVENTFD_LINK.equals(target)) {
            return "it is not an eventfd but " + printable(target);
        }
        if (isSemaphore(fd)) {
            return "it is a semaphore-mode eventfd (EFD_SEMAPHORE)";
        }
        try {
            int flags = LibC.fcntl(fd, LibC.F_GETFL, 0);
            if ((flags & LibC.O_NONBLOCK) == 0) {
                LibC.fcntl(fd, LibC.F_SETFL, flags | LibC.O_NONBLOCK);
            }
        } catch (ErrnoException e) {
            return "it cannot be made non-blocking (" + e.getMessage() + ")";
        }
        return null;
    }

    /**
     * Wakes every thread blocked writing to the eventfd {@code fd}: reading an eventfd resets its
     * counter to 0 and wakes its write waiters (fs/eventfd.c {@code eventfd_read} calls
     * {@code wake_up_locked_poll(..., EPOLLOUT)}), whose writes of 1 then fit. The pending interrupt is
     * consumed, i.e. lost to the client: callers only do this to a counter at its maximum (a hostile
     * client's) or during a device reset, when no interrupt is owed any more. O_NONBLOCK is set again
     * first (for writers to come), but the client may clear it again at any moment, and a plain read(2)
     * of a zero counter on a blocking eventfd would hang the caller; so the read is
     * {@code preadv2(RWF_NOWAIT)}, which cannot block whatever the flags say. EAGAIN means the counter is 0, and then nobody can be blocked writing
     * 1 (a write only waits while the counter is at its maximum). Never throws; not the hot path.
     *
     * @param buffer 8 bytes for the drained value
     * @return true if the eventfd could block a writer: the client had cleared O_NONBLOCK again, or the
     *         counter was at its maximum (QEMU does neither)
     */
    static boolean unblockWriters(int fd, MemorySegment buffer) {
        boolean reblocked = false;
        try {
            int flags = LibC.fcntl(fd, LibC.F_GETFL, 0);
            if ((flags & LibC.O_NONBLOCK) == 0) {
                reblocked = true;
                LibC.fcntl(fd, LibC.F_SETFL, flags | LibC.O_NONBLOCK);
            }
        } catch (ErrnoException e) {
            // the read below does not rely on the flag
        }
        buffer.set(JAVA_LONG, 0, 0L);
        try {
            LibC.readNoWait(fd, buffer, 8);
        } catch (ErrnoException e) {
            if (e.errno() == Errno.ENOTSUP) {
                readBeforeLinux512(fd, buffer);
            }
            // EAGAIN: nothing to drain, so no writer waits
        }
        return reblocked || buffer.get(JAVA_LONG, 0) == COUNTER_MAX;
    }

    /**
     * Kernels before 5.12 (eventfd without {@code read_iter}) refuse RWF_NOWAIT: fall back on read(2)
     * while O_NONBLOCK is still set. A client that clears it and drains the counter between the check
     * and the read could block this read; on such kernels that window stays open.
     */
    private static void readBeforeLinux512(int fd, MemorySegment buffer) {
        try {
            if ((LibC.fcntl(fd, LibC.F_GETFL, 0) & LibC.O_NONBLOCK) != 0) {
                LibC.read(fd, buffer, 8);
            }
        } catch (ErrnoException e) {
            // EAGAIN: nothing to drain
        }
    }

    /** A file name is the client's text: no control characters (log lines), at most 120 characters. */
    private static String printable(String target) {
        String clean = target.replaceAll("\\p{Cntrl}", "?");
        return clean.length() <= 120 ? clean : clean.substring(0, 120) + "...";
    }

    /**
     * True if a writer of 1 may be blocked on the eventfd {@code fd} now: its counter is at the maximum
     * (a write of 1 waits exactly then, fs/eventfd.c {@code eventfd_write}). Reads the counter from
     * fdinfo ({@code eventfd-count}, fs/eventfd.c {@code eventfd_show_fdinfo}) without consuming it, so
     * an honest client's pending interrupt stays; if fdinfo has no counter (very old kernels), answers
     * true, so that a blocked writer is still woken.
     */
    static boolean isSaturated(int fd) {
        String count = fdinfo(fd, COUNT_LINE);
        try {
            return count == null || Long.parseUnsignedLong(count, 16) == COUNTER_MAX;
        } catch (NumberFormatException e) {
            return true;
        }
    }

    /** True if the client cleared O_NONBLOCK again on the shared description (QEMU never does). */
    static boolean isBlockingAgain(int fd) {
        try {
            return (LibC.fcntl(fd, LibC.F_GETFL, 0) & LibC.O_NONBLOCK) == 0;
        } catch (ErrnoException e) {
            return false;
        }
    }

    /** Recent kernels list "eventfd-semaphore: 0|1" in an eventfd's fdinfo (fs/eventfd.c eventfd_show_fdinfo). */
    private static boolean isSemaphore(int fd) {
        String semaphore = fdinfo(fd, SEMAPHORE_LINE);
        // no line, or fdinfo unreadable: the link check already proved an eventfd; nothing more to learn
        return semaphore != null && !semaphore.equals("0");
    }

    /** The trimmed value of the fdinfo line of {@code fd} starting with {@code prefix}, or null. */
    private static String fdinfo(int fd, String prefix) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/fdinfo/" + fd))) {
                if (line.startsWith(prefix)) {
                    return line.substring(prefix.length()).trim();
                }
            }
        } catch (IOException | RuntimeException e) {
            // unreadable: unknown
        }
        return null;
    }
}
