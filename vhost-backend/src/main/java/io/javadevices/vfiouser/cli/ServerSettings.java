package io.javadevices.vfiouser.cli;

import io.javadevices.pci.PciDevicePlugin;
import io.javadevices.pci.WorkerPool;
import io.javadevices.vfiouser.host.ControllerDefaults;

import java.nio.file.Path;
import java.util.Map;

/**
 * What the command line asked the server process for, checked: {@link ServerMain} fills it from its options,
 * {@link ServerProcess} runs it. One field per server-wide setting, so a new option adds a field here and its
 * use in {@link ServerProcess}, and {@link ServerMain} stays a thin parser.
 */
final class ServerSettings {
    /** The first controller's socket, or null (only with {@link #rpcSocket}: controllers come from controller_add). */
    Path socket;
    /** The first controller's device plugin (null without {@link #socket}). */
    PciDevicePlugin plugin;
    /** The first controller's plugin options. */
    Map<String, String> pluginOptions = Map.of();
    /** The control plane's socket, or null for none. */
    Path rpcSocket;
    /** Socket mode, allowed uids and limits of every controller (the uids also gate the control plane). */
    ControllerDefaults defaults = ControllerDefaults.standard();
    /** Seconds between status lines of the first controller (0 = off). */
    int statsInterval;
    /** The first controller's inherited listening socket ({@code --socket-fd}, sd_listen_fds), or -1: bind {@link #socket}. */
    int listenerFd = -1;
    /** Where {@link #listenerFd} came from, for the log; null without one. */
    String activationNote;
    /** {@code --metrics-port}, or null for no HTTP endpoint. */
    Integer metricsPort;
    /** The queue-polling threads every controller's device shares, or null: each device makes its own. */
    WorkerPool workers;
}
