package io.javadevices.vfiouser.server;

import io.javadevices.vfiouser.sys.LibC;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * The descriptors a hostile vfio-user client can attach to a message instead of an eventfd or guest RAM:
 * pipes (one end, or a write end whose buffer is already full and blocking), one end of a socket pair, a
 * regular file, a directory. Test-side FFM calls for what {@link LibC} does not bind (pipe2, socketpair,
 * open, fcntl), plus a listing of this process's descriptors for leak checks.
 */
final class HostileFds {
    private static final int O_RDONLY = 0, O_RDWR = 2, O_NONBLOCK = 0x800, O_DIRECTORY = 0x10000, O_CLOEXEC = 0x80000;
    private static final int F_SETFL = 4;
    private static final Linker LINKER = Linker.nativeLinker();
    private static final MethodHandle PIPE2 = function("pipe2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle SOCKETPAIR = function("socketpair",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
    private static final MethodHandle OPEN = LINKER.downcallHandle(LINKER.defaultLookup().find("open").orElseThrow(),
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), Linker.Option.firstVariadicArg(2));
    private static final MethodHandle FCNTL = LINKER.downcallHandle(LINKER.defaultLookup().find("fcntl").orElseThrow(),
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT), Linker.Option.firstVariadicArg(2));

    private HostileFds() {
    }

    private static MethodHandle function(String name, FunctionDescriptor descriptor) {
        return LINKER.downcallHandle(LINKER.defaultLookup().find(name).orElseThrow(), descriptor);
    }

    /** {@code pipe2(O_NONBLOCK | O_CLOEXEC)}: {read end, write end}. */
    static int[] pipe() throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment fds = a.allocate(JAVA_INT, 2);
            check((int) PIPE2.invokeExact(fds, O_NONBLOCK | O_CLOEXEC), "pipe2");
            return new int[] {fds.getAtIndex(JAVA_INT, 0), fds.getAtIndex(JAVA_INT, 1)};
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IOException(t);
        }
    }

    /** A pipe whose buffer is full and whose write end blocks: {read end, write end}. */
    static int[] fullBlockingPipe() throws IOException {
        int[] p = pipe();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment chunk = a.allocate(4096);
            while (LibC.writeNoErrno(p[1], chunk, chunk.byteSize()) > 0) {
                // fill until EAGAIN
            }
            check((int) FCNTL.invokeExact(p[1], F_SETFL, 0), "fcntl");
            return p;
        } catch (IOException e) {
            closeAll(p);
            throw e;
        } catch (Throwable t) {
            closeAll(p);
            throw new IOException(t);
        }
    }

    /** Reads a non-blocking pipe's read end until it is empty (unblocks a writer stuck on a full pipe). */
    static void drain(int readEnd) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment chunk = a.allocate(65536);
            while (true) {
                try {
                    if (LibC.read(readEnd, chunk, chunk.byteSize()) <= 0) {
                        return;
                    }
                } catch (IOException e) {
                    return; // EAGAIN: empty
                }
            }
        }
    }

    /** {@code socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC)}. */
    static int[] socketPair() throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment fds = a.allocate(JAVA_INT, 2);
            check((int) SOCKETPAIR.invokeExact(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_NONBLOCK | LibC.SOCK_CLOEXEC,
                    0, fds), "socketpair");
            return new int[] {fds.getAtIndex(JAVA_INT, 0), fds.getAtIndex(JAVA_INT, 1)};
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IOException(t);
        }
    }

    /** Opens a regular file read-write. */
    static int openFile(Path file) throws IOException {
        return open(file, O_RDWR | O_CLOEXEC);
    }

    /** Opens a directory (lseek works on it, mmap does not). */
    static int openDirectory(Path directory) throws IOException {
        return open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }

    private static int open(Path path, int flags) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            return check((int) OPEN.invokeExact(a.allocateFrom(path.toString()), flags, 0), "open " + path);
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IOException(t);
        }
    }

    private static int check(int result, String what) throws IOException {
        if (result < 0) {
            throw new IOException(what + " failed");
        }
        return result;
    }

    static void closeAll(int... fds) {
        for (int fd : fds) {
            LibC.closeQuietly(fd);
        }
    }

    /**
     * This process's descriptors that a vfio-user session can leak (eventfds, memfds, pipes, sockets,
     * files in {@code tempDir}), by number, with what they point at. JVM-internal files (jars, the JDK's
     * own) are left out: the JVM opens and closes those on its own schedule.
     */
    static Map<Integer, String> sessionKinds(Path tempDir) throws IOException {
        Map<Integer, String> fds = new HashMap<>();
        try (var list = Files.list(Path.of("/proc/self/fd"))) {
            for (Path p : (Iterable<Path>) list::iterator) {
                String target;
                try {
                    target = Files.readSymbolicLink(p).toString();
                } catch (IOException gone) {
                    continue; // closed meanwhile (e.g. the listing's own descriptor)
                }
                if (target.startsWith("anon_inode:") || target.startsWith("/memfd:") || target.startsWith("pipe:")
                        || target.startsWith("socket:") || target.startsWith(tempDir.toString())) {
                    fds.put(Integer.parseInt(p.getFileName().toString()), target);
                }
            }
        }
        return fds;
    }
}
