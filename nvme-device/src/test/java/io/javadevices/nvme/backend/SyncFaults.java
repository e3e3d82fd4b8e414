package io.javadevices.nvme.backend;

import java.io.IOException;

/**
 * Test access to a {@link FileBackend}'s durability seam ({@link SyncState}), for tests in other packages: fault
 * injection, and which call made a write durable.
 */
public final class SyncFaults {
    private SyncFaults() {
    }

    /**
     * The next durability point of {@code backend} (a FileBackend) fails with {@code failure}, on whichever path:
     * its fdatasync, an RWF_DSYNC write, or an io_uring queue's fsync or RWF_DSYNC write as it completes.
     */
    public static void failNextSync(BlockBackend backend, IOException failure) {
        ((FileBackend) backend).durability().failNext(failure);
    }

    /** Of the backend's syncs, the durable writes done with RWF_DSYNC (the rest are fdatasync / fsync calls). */
    public static long dsyncWrites(BlockBackend backend) {
        return ((FileBackend) backend).durability().dsyncWrites();
    }
}
