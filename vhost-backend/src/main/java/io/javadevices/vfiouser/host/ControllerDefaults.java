package io.javadevices.vfiouser.host;

import io.javadevices.vfiouser.server.Limits;

import java.util.Objects;

/**
 * The server-wide settings every controller of a {@link ControllerHost} gets, whether it came from the command
 * line or from {@code controller_add}: the socket file's mode, the uids allowed to connect (SO_PEERCRED) and the
 * per-client resource limits.
 *
 * @param socketMode permission bits of each socket file
 * @param allowUids  the uids whose clients are served, or null for the default (own uid and root)
 * @param limits     the per-client limits
 */
public record ControllerDefaults(int socketMode, int[] allowUids, Limits limits) {
    public ControllerDefaults {
        Objects.requireNonNull(limits, "limits");
        allowUids = allowUids == null ? null : allowUids.clone();
    }

    /** Mode 0600, the default uids, the default limits. */
    public static ControllerDefaults standard() {
        return new ControllerDefaults(0600, null, Limits.defaults());
    }

    @Override
    public int[] allowUids() {
        return allowUids == null ? null : allowUids.clone();
    }
}
