package io.javadevices.vfiouser.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * The fields of {@code struct statx} ({@code <linux/stat.h>}) the server checks: file type, permission
 * bits, owner, inode. statx is used instead of fstat because its layout is the same on every Linux
 * architecture ({@code struct stat} differs between x86-64 and arm64), and with {@code AT_EMPTY_PATH}
 * it reads an {@code O_PATH} fd, i.e. the very inode that fd pins, not whatever a path names now.
 *
 * @param mode the {@code st_mode} (type and permission bits)
 * @param uid  the owner's uid (raw 32 bits of a uid_t)
 * @param ino  the inode number
 */
public record Statx(int mode, int uid, long ino) {
    /** 256 bytes, as the kernel defines it; only the leading fields are read. */
    public static final MemoryLayout LAYOUT = MemoryLayout.structLayout(
            MemoryLayout.paddingLayout(20),          // stx_mask, stx_blksize, stx_attributes, stx_nlink
            JAVA_INT.withName("stx_uid"),            // 20
            MemoryLayout.paddingLayout(4),           // stx_gid
            JAVA_SHORT.withName("stx_mode"),         // 28
            MemoryLayout.paddingLayout(2),
            JAVA_LONG.withName("stx_ino"),           // 32
            MemoryLayout.paddingLayout(256 - 40));
    private static final long UID = 20;
    private static final long MODE = 28;
    private static final long INO = 32;
    private static final int STATX_TYPE = 0x1;
    private static final int STATX_MODE = 0x2;
    private static final int STATX_UID = 0x8;
    private static final int STATX_INO = 0x100;

    public static final int S_IFMT = 0170000;
    public static final int S_IFSOCK = 0140000;
    public static final int S_IFLNK = 0120000;
    public static final int S_IFREG = 0100000;
    public static final int S_IFDIR = 0040000;

    /** The status of the file {@code fd} refers to (an O_PATH fd works). */
    public static Statx of(int fd) throws ErrnoException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buffer = a.allocate(LAYOUT);
            FileIdentity.statx(fd, a.allocateFrom(""), FileIdentity.AT_EMPTY_PATH, STATX_TYPE | STATX_MODE | STATX_UID | STATX_INO,
                    buffer);
            return new Statx(Short.toUnsignedInt(buffer.get(JAVA_SHORT, MODE)), buffer.get(JAVA_INT, UID),
                    buffer.get(JAVA_LONG, INO));
        }
    }

    public boolean isSocket() {
        return (mode & S_IFMT) == S_IFSOCK;
    }

    /** "socket", "symbolic link", "regular file", "directory" or "special file", for error messages. */
    public static String kind(int mode) {
        return switch (mode & S_IFMT) {
            case S_IFSOCK -> "socket";
            case S_IFLNK -> "symbolic link";
            case S_IFREG -> "regular file";
            case S_IFDIR -> "directory";
            default -> "special file";
        };
    }
}
