package io.javadevices.nvme.backend;

import java.io.IOException;

/** Test access to {@link FileBackend}'s package-private sync fault hook, for tests in other packages. */
public final class SyncFaults {
    private SyncFaults() {
    }

    /** The next sync of {@code backend} (a FileBackend) fails with {@code failure}, as if fdatasync had returned it. */
    public static void failNextSync(BlockBackend backend, IOException failure) {
        ((FileBackend) backend).failNextSync(failure);
    }
}
