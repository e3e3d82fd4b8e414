package io.javadevices.nvme.backend;

import java.nio.file.Path;

/** Test access to {@link FileBackend} on a file system without fallocate(2) modes, for tests in other packages. */
public final class FallocateFaults {
    private FallocateFaults() {
    }

    /** A buffered FileBackend whose every fallocate (the open-time punch probe too) fails with EOPNOTSUPP. */
    public static FileBackend withoutFallocate(Path path, long size) {
        return new FileBackend(path, size, false, (fd, mode, offset, length) -> -Posix.EOPNOTSUPP);
    }
}
