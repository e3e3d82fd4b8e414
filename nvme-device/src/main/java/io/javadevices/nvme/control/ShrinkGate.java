package io.javadevices.nvme.control;

import io.javadevices.nvme.backend.BlockBackend;

import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;

/**
 * The backends whose shrink still waits for a command in flight on the old size: another resize of the same backend
 * is refused until it has run, or a grow could be truncated by the shrink that comes after it.
 */
final class ShrinkGate {
    private final Set<BlockBackend> pending = Collections.synchronizedSet(Collections.newSetFromMap(new IdentityHashMap<>()));

    Completion begin(BlockBackend backend) {
        pending.add(backend);
        return new Completion();
    }

    /** The shrink ran (release thread). */
    void end(BlockBackend backend) {
        pending.remove(backend);
    }

    boolean pending(BlockBackend backend) {
        return pending.contains(backend);
    }
}
