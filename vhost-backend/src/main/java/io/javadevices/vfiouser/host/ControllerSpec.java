package io.javadevices.vfiouser.host;

import java.nio.file.Path;
import java.util.Map;
import java.util.Objects;

/**
 * What one controller of a {@link ControllerHost} is made of: where it listens, which device plugin and that
 * plugin's {@code key=value} options (the command line's {@code --namespace}, {@code -o} ... or the control plane's
 * {@code controller_add} parameters, already translated).
 *
 * @param socket  the Unix socket path (normalized by the host: the controller's name)
 * @param device  the device plugin's name, e.g. {@code nvme}
 * @param options    the plugin's options, forwarded unchanged
 * @param listenerFd an inherited listening socket bound to {@code socket} to serve on instead of binding it
 *                   (socket activation, {@code VfioUserServer.Builder#listenerFd}), or -1
 */
public record ControllerSpec(Path socket, String device, Map<String, String> options, int listenerFd) {
    public ControllerSpec {
        Objects.requireNonNull(socket, "socket");
        Objects.requireNonNull(device, "device");
        options = Map.copyOf(options);
    }

    /** A controller that binds its own socket. */
    public ControllerSpec(Path socket, String device, Map<String, String> options) {
        this(socket, device, options, -1);
    }
}
