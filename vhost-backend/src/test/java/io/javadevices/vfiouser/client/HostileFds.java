package io.javadevices.vfiouser.client;

import io.javadevices.vfiouser.sys.ErrnoException;
import io.javadevices.vfiouser.sys.LibC;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Fds a hostile client could send as "eventfds": pipes, socket pairs, regular files and blocking
 * eventfds with a pre-loaded counter. Binds its own libc calls (not the server's LibC), so tests built
 * on it also compile and run against older server code.
 */
public final class HostileFds {
    /** The largest value an eventfd counter can hold (eventfd(2)): a further write of 1 blocks or fails. */
    public static final long EVENTFD_MAX = 0xFFFF_FFFF_FFFF_FFFEL;
    public static final int EFD_SEMAPHORE = 1;
    private static final int O_RDWR = 2;
    private static final int O_CREAT = 0x40;
    private static final int O_CLOEXEC = 0x80000;
    private static final int O_NONBLOCK = 0x800;
    private static final int F_GETFL = 3;
    private static final int F_SETFL = 4;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final MethodHandle PIPE2 = bind("pipe2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle SOCKETPAIR = bind("socketpair",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
    private static final MethodHandle OPEN = bind("open", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT),
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle FCNTL = bind("fcntl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT),
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle WRITE = bind("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));

    private HostileFds() {
    }

    private static MethodHandle bind(String name, FunctionDescriptor d, Linker.Option... options) {
        return LINKER.downcallHandle(LINKER.defaultLookup().find(name).orElseThrow(), d, options);
    }

    private static int check(String call, int r) throws ErrnoException {
        if (r < 0) {
            throw new ErrnoException(call, -1);
        }
        return r;
    }

    /** A pipe: {@code [read end, write end]}, both blocking. */
    public static int[] pipe() throws Throwable {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment fds = a.allocate(JAVA_INT, 2);
            check("pipe2", (int) PIPE2.invokeExact(fds, O_CLOEXEC));
            return new int[] {fds.getAtIndex(JAVA_INT, 0), fds.getAtIndex(JAVA_INT, 1)};
        }
    }

    /** The write end of a blocking pipe whose buffer is full: the next write(2) to it blocks. */
    public static int fullPipeWriteEnd(int[] pipe) throws Throwable {
        int w = pipe[1];
        int flags = check("fcntl", (int) FCNTL.invokeExact(w, F_GETFL, 0));
        check("fcntl", (int) FCNTL.invokeExact(w, F_SETFL, flags | O_NONBLOCK));
        try (Arena a = Arena.ofConfined()) {
            MemorySegment chunk = a.allocate(4096);
            while ((long) WRITE.invokeExact(w, chunk, 4096L) > 0) {
                // fill until EAGAIN
            }
            MemorySegment one = a.allocate(1);
            while ((long) WRITE.invokeExact(w, one, 1L) > 0) {
                // and the last bytes
            }
        }
        check("fcntl", (int) FCNTL.invokeExact(w, F_SETFL, flags)); // blocking again
        return w;
    }

    /** An AF_UNIX stream socket pair. */
    public static int[] socketPair() throws Throwable {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment fds = a.allocate(JAVA_INT, 2);
            check("socketpair", (int) SOCKETPAIR.invokeExact(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0, fds));
            return new int[] {fds.getAtIndex(JAVA_INT, 0), fds.getAtIndex(JAVA_INT, 1)};
        }
    }

    /** A regular file, created if needed, opened read-write. */
    public static int regularFile(Path path) throws Throwable {
        try (Arena a = Arena.ofConfined()) {
            return check("open", (int) OPEN.invokeExact(a.allocateFrom(path.toString()), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
        }
    }

    /** A BLOCKING eventfd (no EFD_NONBLOCK) whose counter is at {@link #EVENTFD_MAX}: a write of 1 blocks. */
    public static int saturatedBlockingEventfd(int extraFlags) throws Throwable {
        int fd = LibC.eventfd(0, LibC.EFD_CLOEXEC | extraFlags);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_LONG);
            v.set(JAVA_LONG, 0, EVENTFD_MAX);
            LibC.write(fd, v, 8);
        }
        return fd;
    }

    /**
     * What a hostile client can do after SET_IRQS with its own copy of an eventfd it handed over (the
     * server's copy shares the open file description): clear O_NONBLOCK again and add to the counter
     * until it is at {@link #EVENTFD_MAX}, so that a further write of 1 through ANY copy blocks. The
     * counter must be 0 (nothing pending), so the write of the maximum returns at once.
     */
    public static void makeBlockingAndSaturate(int eventfd) throws Throwable {
        int flags = check("fcntl", (int) FCNTL.invokeExact(eventfd, F_GETFL, 0));
        check("fcntl", (int) FCNTL.invokeExact(eventfd, F_SETFL, flags & ~O_NONBLOCK));
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_LONG);
            v.set(JAVA_LONG, 0, EVENTFD_MAX);
            LibC.write(eventfd, v, 8);
        }
    }

    /**
     * Client threads that keep an eventfd saturated: each does a blocking write of {@link #EVENTFD_MAX},
     * again each time the counter is drained to 0. They compete for the counter with every writer a
     * drain wakes (the drain wakes them all), so one drain mostly hands it back to them. {@link #close}
     * stops them.
     */
    public static final class Resaturator implements AutoCloseable {
        private final int eventfd;
        private final Thread[] threads;
        private volatile boolean stopped;

        /** Starts {@code count} threads on {@code eventfd}, the client's own copy, blocking and saturated. */
        public Resaturator(int eventfd, int count) {
            this.eventfd = eventfd;
            this.threads = new Thread[count];
            for (int i = 0; i < count; i++) {
                threads[i] = Thread.ofPlatform().daemon().name("client-resaturator-" + i).start(this::resaturate);
            }
        }

        private void resaturate() {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment max = a.allocate(JAVA_LONG);
                max.set(JAVA_LONG, 0, EVENTFD_MAX);
                while (!stopped) {
                    LibC.write(eventfd, max, 8);
                }
            } catch (ErrnoException e) {
                // the eventfd is gone
            }
        }

        /** Stops the threads: drains the counter until their blocked writes returned and they saw the stop. */
        @Override
        public void close() throws InterruptedException {
            stopped = true;
            try (Arena a = Arena.ofConfined()) {
                MemorySegment value = a.allocate(JAVA_LONG);
                for (Thread thread : threads) {
                    while (thread.isAlive()) {
                        try {
                            LibC.readNoWait(eventfd, value, 8);
                        } catch (ErrnoException e) {
                            // EAGAIN: nothing to drain yet
                        }
                        thread.join(10);
                    }
                }
            }
        }
    }

    /** True if {@code fd}'s open file description has O_NONBLOCK. */
    public static boolean isNonBlocking(int fd) throws Throwable {
        return (check("fcntl", (int) FCNTL.invokeExact(fd, F_GETFL, 0)) & O_NONBLOCK) != 0;
    }
}
