package io.javadevices.pci;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * How one polling thread sleeps on Linux: in {@code ppoll} on an eventfd of its own, so that not only a
 * {@link WorkerPool.Registration#wake} (a {@code write} to the eventfd) ends the sleep but also the kernel: an
 * io_uring with this eventfd registered ({@code IORING_REGISTER_EVENTFD}) signals it for every completion, which
 * lets one thread sleep for several queues' rings at once without blocking in any one of them
 * ({@link WorkerPool.Registration#wakeFd}). Through the FFM API (the plugin API has no dependency); every buffer
 * is allocated once, so a sleep and a wake allocate nothing.
 *
 * <p>The eventfd is non-blocking and drained ({@link #drain}) before the thread publishes that it sleeps: every
 * signal from then on (a wake, a completion) makes the next {@code ppoll} return at once, and a completion that
 * signalled before the drain is already visible to the pollers' re-check.
 */
final class EventfdSleep {
    private static final int EFD_NONBLOCK = 04000, EFD_CLOEXEC = 02000000;
    private static final short POLLIN = 1;

    private final int fd;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment pollfd = arena.allocate(8, 8);
    private final MemorySegment timespec = arena.allocate(16, 8);
    private final MemorySegment buffer = arena.allocate(8, 8);
    private final MemorySegment one = arena.allocate(8, 8);

    private EventfdSleep(int fd) {
        this.fd = fd;
        pollfd.set(JAVA_INT, 0, fd);
        pollfd.set(JAVA_SHORT, 4, POLLIN);
        one.set(JAVA_LONG, 0, 1L);
    }

    /** A new one, or null where eventfd/ppoll cannot be used (not Linux, native access denied): park instead. */
    static EventfdSleep open() {
        try {
            if (Native.EVENTFD == null || Native.PPOLL == null || Native.READ == null || Native.WRITE == null) {
                return null;
            }
            int fd = (int) Native.EVENTFD.invokeExact(0, EFD_NONBLOCK | EFD_CLOEXEC);
            return fd < 0 ? null : new EventfdSleep(fd);
        } catch (Throwable t) {
            return null;
        }
    }

    int fd() {
        return fd;
    }

    /** Resets the count (the polling thread, before it publishes that it sleeps). */
    void drain() {
        try {
            long ignored = (long) Native.READ.invokeExact(fd, buffer, 8L); // EAGAIN when nothing was signalled
        } catch (Throwable t) {
            throw new IllegalStateException("eventfd read", t);
        }
    }

    /** Sleeps until signalled or {@code nanos} passed ({@code Long.MAX_VALUE}: no timeout); may return early. */
    void sleep(long nanos) {
        MemorySegment timeout = MemorySegment.NULL;
        if (nanos != Long.MAX_VALUE) {
            timespec.set(JAVA_LONG, 0, nanos / 1_000_000_000L);
            timespec.set(JAVA_LONG, 8, nanos % 1_000_000_000L);
            timeout = timespec;
        }
        try {
            int ignored = (int) Native.PPOLL.invokeExact(pollfd, 1L, timeout, MemorySegment.NULL);
        } catch (Throwable t) {
            throw new IllegalStateException("ppoll", t);
        }
    }

    /** Ends a current or the next sleep (any thread). */
    void signal() {
        try {
            long ignored = (long) Native.WRITE.invokeExact(fd, one, 8L);
        } catch (Throwable t) {
            throw new IllegalStateException("eventfd write", t);
        }
    }

    /** The thread ended: closes the eventfd (a ring that registered it keeps its own reference). */
    void close() {
        try {
            int ignored = (int) Native.CLOSE.invokeExact(fd);
        } catch (Throwable t) {
            // nothing to do: the process keeps one descriptor more
        }
        arena.close();
    }

    /** The downcalls, looked up once; null where they do not exist or native access is denied. */
    private static final class Native {
        static final MethodHandle EVENTFD = find("eventfd", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
        static final MethodHandle PPOLL = find("ppoll",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS));
        static final MethodHandle READ = find("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
        static final MethodHandle WRITE = find("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
        static final MethodHandle CLOSE = find("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));

        private static MethodHandle find(String name, FunctionDescriptor descriptor) {
            try {
                if (!System.getProperty("os.name", "").startsWith("Linux")) {
                    return null;
                }
                Linker linker = Linker.nativeLinker();
                return linker.defaultLookup().find(name).map(f -> linker.downcallHandle(f, descriptor)).orElse(null);
            } catch (RuntimeException | Error e) {
                return null;
            }
        }
    }
}
