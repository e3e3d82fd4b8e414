package io.javadevices.vfiouser.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static io.javadevices.vfiouser.sys.Native.*;
import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * What a file is, for the checks on fds a client sends and on the socket path: open without following
 * links, statx / fstat identity (device, inode, type, size), the filesystem type (fstatfs), memfd seals
 * (fcntl F_ADD_SEALS / F_GET_SEALS) and the effective uid. Same boundary rules as {@link LibC}: errno
 * captured per thread by {@link Native}, failures as {@link ErrnoException}, EINTR retried where a retry
 * is correct.
 */
public final class FileIdentity {
    private FileIdentity() {
    }

    /** open(2) flag: an fd that only names the file (no read/write), usable with statx and /proc/self/fd. */
    public static final int O_PATH = 010000000;
    /** open(2) flag: fail or, with O_PATH, open the link itself instead of following a final symlink. */
    public static final int O_NOFOLLOW = "aarch64".equals(System.getProperty("os.arch")) ? 0100000 : 0400000;
    public static final int O_CLOEXEC = 02000000;
    /** statx(2): operate on the fd itself when the path is empty. */
    public static final int AT_EMPTY_PATH = 0x1000;

    private static final MethodHandle OPEN_PATH = LINKER.downcallHandle(
            symbol("open"),
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT),
            Linker.Option.firstVariadicArg(2), CAPTURE_ERRNO); // int open(const char *, int, ...)
    private static final MethodHandle STATX = downcall("statx",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS));
    private static final MethodHandle GETEUID = LINKER.downcallHandle(
            symbol("geteuid"),
            FunctionDescriptor.of(JAVA_INT));

    /** open(2) of a NUL-terminated path without O_CREAT (the mode argument is 0); retries EINTR. */
    public static int open(MemorySegment path, int flags) throws ErrnoException {
        MemorySegment st = state();
        while (true) {
            int r;
            try {
                r = (int) OPEN_PATH.invokeExact(st, path, flags, 0);
            } catch (Throwable t) {
                throw linkage(t);
            }
            if (r >= 0) {
                return r;
            }
            int e = errno(st);
            if (e != Errno.EINTR) {
                throw new ErrnoException("open", e);
            }
        }
    }

    /** statx(2) into {@code buffer} (a {@link Statx#LAYOUT}); with {@link #AT_EMPTY_PATH} and an empty path, of the fd. */
    public static void statx(int dirFd, MemorySegment path, int flags, int mask, MemorySegment buffer)
            throws ErrnoException {
        MemorySegment st = state();
        int r;
        try {
            r = (int) STATX.invokeExact(st, dirFd, path, flags, mask, buffer);
        } catch (Throwable t) {
            throw linkage(t);
        }
        checked("statx", r, st);
    }

    /** geteuid(2): the effective user id (cannot fail), as the raw 32 bits of a uid_t. */
    public static int geteuid() {
        try {
            return (int) GETEUID.invokeExact();
        } catch (Throwable t) {
            throw linkage(t);
        }
    }

    // fcntl(2) file seals (linux/fcntl.h)
    public static final int F_ADD_SEALS = 1033;
    public static final int F_GET_SEALS = 1034;
    public static final int F_SEAL_SEAL = 0x1;
    public static final int F_SEAL_SHRINK = 0x2;
    public static final int F_SEAL_GROW = 0x4;
    public static final int F_SEAL_WRITE = 0x8;
    // statfs(2) f_type values (linux/magic.h)
    public static final long TMPFS_MAGIC = 0x01021994L;
    public static final long HUGETLBFS_MAGIC = 0x958458f6L;
    /** stat(2) file type bits and the regular-file type. */
    public static final int S_IFMT = 0170000;
    public static final int S_IFREG = 0100000;

    private static final int STATX_BASIC_STATS = 0x7ff;
    /**
     * struct statx (linux/stat.h) is the same on every architecture, unlike struct stat, so statx with
     * AT_EMPTY_PATH is this class's fstat: offsets of the fields used below.
     */
    private static final long STATX_SIZE = 256;
    private static final long STX_MODE = 28;
    private static final long STX_INO = 32;
    private static final long STX_SIZE = 40;
    private static final long STX_DEV_MAJOR = 136;
    private static final long STX_DEV_MINOR = 140;
    /** struct statfs: f_type is the first member, a long, on x86-64 and arm64; the struct is under 128 bytes. */
    private static final long STATFS_SIZE = 128;

    private static final MethodHandle FSTATFS = downcall("fstatfs", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));

    /** What {@link #fstat} tells about an open file: identity (device, inode), type bits and size. */
    public record FileStat(long device, long inode, int mode, long size) {
        public boolean isRegularFile() {
            return (mode & S_IFMT) == S_IFREG;
        }

        /** True if both describe the same file (st_dev and st_ino equal), whatever fd they came from. */
        public boolean sameFile(FileStat other) {
            return device == other.device && inode == other.inode;
        }
    }

    /** fstat(2) of {@code fd} (as statx(fd, "", AT_EMPTY_PATH)). */
    public static FileStat fstat(int fd) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(STATX_SIZE, 8);
            MemorySegment empty = arena.allocateFrom("");
            statx(fd, empty, AT_EMPTY_PATH, STATX_BASIC_STATS, buf);
            long device = (buf.get(JAVA_INT, STX_DEV_MAJOR) & 0xFFFF_FFFFL) << 32 | buf.get(JAVA_INT, STX_DEV_MINOR) & 0xFFFF_FFFFL;
            return new FileStat(device, buf.get(JAVA_LONG, STX_INO), buf.get(JAVA_SHORT, STX_MODE) & 0xFFFF,
                    buf.get(JAVA_LONG, STX_SIZE));
        }
    }

    /** fstatfs(2): the {@code f_type} magic of the filesystem {@code fd} lives on. */
    public static long filesystemType(int fd) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment st = state();
            MemorySegment buf = arena.allocate(STATFS_SIZE, 8);
            int r;
            try {
                r = (int) FSTATFS.invokeExact(st, fd, buf);
            } catch (Throwable t) {
                throw linkage(t);
            }
            checked("fstatfs", r, st);
            return buf.get(JAVA_LONG, 0) & 0xFFFF_FFFFL; // the magics are 32-bit; f_type is sign-extended on some ABIs
        }
    }

    /** fcntl(fd, F_ADD_SEALS, seals). */
    public static void addSeals(int fd, int seals) throws ErrnoException {
        fcntlInt("fcntl(F_ADD_SEALS)", fd, F_ADD_SEALS, seals);
    }

    /** fcntl(fd, F_GET_SEALS): the file's seals (EINVAL if the file does not support sealing). */
    public static int seals(int fd) throws ErrnoException {
        return fcntlInt("fcntl(F_GET_SEALS)", fd, F_GET_SEALS, 0);
    }

    private static int fcntlInt(String call, int fd, int command, int argument) throws ErrnoException {
        try {
            return LibC.fcntl(fd, command, argument);
        } catch (ErrnoException e) {
            throw new ErrnoException(call, e.errno());
        }
    }
}
