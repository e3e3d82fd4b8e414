package io.javadevices.vfiouser.host;

import io.javadevices.pci.DeviceControl.ControlException;
import io.javadevices.pci.PciDevicePlugin;
import io.javadevices.pci.WorkerPool;
import io.javadevices.vfiouser.server.VfioUserServer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.locks.ReentrantLock;
import java.util.stream.Collectors;

/**
 * Many controllers in one process: a registry of {@link VfioUserServer}s, one per controller, keyed by the
 * normalized socket path, added and removed at run time (the command line's first controller, the control plane's
 * {@code controller_add} / {@code controller_remove}). SPDK's vfio-user target keeps one subsystem per socket the
 * same way ({@code nvmf_vfio_user_listen}).
 *
 * <p><b>Isolation.</b> Each server owns its client, its DMA map, its interrupts, its limits and its peer gate, so
 * a client that crashes, resets or sends garbage affects its own controller only. Nothing here is touched by a
 * client: the registry and the {@link #controlLock() control lock} are taken by management calls only (the
 * control plane and the command line), never by a connection thread or an I/O worker, so a client cannot wedge
 * them.
 *
 * <p><b>Threads.</b> Every method takes the control lock; the control plane holds it for a whole call, so calls
 * are executed one at a time server-wide.
 */
public final class ControllerHost implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(ControllerHost.class.getName());

    private final ReentrantLock controlLock = new ReentrantLock();
    private final Map<Path, Controller> controllers = new LinkedHashMap<>();
    private final List<PciDevicePlugin> plugins;
    private final ControllerDefaults defaults;
    private final WorkerPool workers;
    private volatile Runnable shutdownRequest = () -> { };
    private boolean closed;

    /**
     * @param plugins  the device plugins {@link ControllerSpec#device()} names
     * @param defaults the mode, uids and limits of every controller
     * @param workers  the shared queue-polling pool handed to every device, or null (each device makes its own)
     */
    public ControllerHost(List<PciDevicePlugin> plugins, ControllerDefaults defaults, WorkerPool workers) {
        this.plugins = List.copyOf(plugins);
        this.defaults = Objects.requireNonNull(defaults, "defaults");
        this.workers = workers;
    }

    /** A host of the plugins on this class's class path. */
    public static ControllerHost withInstalledPlugins(ControllerDefaults defaults, WorkerPool workers) {
        return new ControllerHost(PciDevicePlugin.available(ControllerHost.class.getClassLoader()), defaults, workers);
    }

    /** A controller's name: {@code path.toAbsolutePath().normalize()}. */
    public static Path normalize(Path path) {
        return path.toAbsolutePath().normalize();
    }

    /** The lock that serializes management calls (the control plane holds it for a whole call). */
    public ReentrantLock controlLock() {
        return controlLock;
    }

    /** The device plugins' names, in class-path order. */
    public List<String> deviceNames() {
        return plugins.stream().map(PciDevicePlugin::name).toList();
    }

    /** The plugin named {@code name}, or null. */
    public PciDevicePlugin plugin(String name) {
        return plugins.stream().filter(p -> p.name().equals(name)).findFirst().orElse(null);
    }

    /**
     * Creates the device and starts serving it on its socket. Nothing is left behind when it fails.
     *
     * @throws ControlException INVALID_PARAMS for an unknown device or options the plugin refuses (its message),
     *                          REFUSED if the socket is served already (here or by another process), cannot be
     *                          bound, a backend cannot be opened, or the host is shutting down
     */
    public Controller add(ControllerSpec spec) throws ControlException {
        controlLock.lock();
        try {
            if (closed) {
                throw ControlException.refused("the server is shutting down");
            }
            Path socket;
            try {
                socket = normalize(spec.socket());
            } catch (InvalidPathException e) {
                throw ControlException.invalidParams("socket: not a usable path: " + e.getMessage());
            }
            if (controllers.containsKey(socket)) {
                throw ControlException.refused("socket " + socket
                        + " is already served by a controller of this server");
            }
            PciDevicePlugin plugin = plugin(spec.device());
            if (plugin == null) {
                throw ControlException.invalidParams("device: no device plugin named '" + spec.device()
                        + "' (available: " + String.join(", ", deviceNames()) + ")");
            }
            FlushOnClose[] created = new FlushOnClose[1];
            VfioUserServer.Builder builder = VfioUserServer.builder()
                    .socket(socket)
                    .socketMode(defaults.socketMode())
                    .limits(defaults.limits())
                    .workers(workers)
                    .device(context -> created[0] = new FlushOnClose(plugin.create(spec.options(), context),
                            socket.toString()));
            if (defaults.allowUids() != null) {
                builder.allowUids(defaults.allowUids());
            }
            if (spec.listenerFd() >= 0) {
                builder.listenerFd(spec.listenerFd()); // socket activation: served as inherited, never unlinked
            }
            VfioUserServer server = builder.build();
            try {
                server.start();
            } catch (IllegalArgumentException e) {
                throw ControlException.invalidParams(message(e));
            } catch (IOException | UncheckedIOException | IllegalStateException e) {
                throw ControlException.refused(message(e));
            }
            Controller controller = new Controller(socket, plugin.name(), server, created[0]);
            controllers.put(socket, controller);
            return controller;
        } finally {
            controlLock.unlock();
        }
    }

    private static String message(Throwable e) {
        String m = e.getMessage();
        return (m == null ? e.getClass().getSimpleName() : m).replace('\n', ' ');
    }

    /**
     * Stops serving the controller on {@code socket}: disconnects its client, flushes and closes the device and
     * removes the socket file.
     *
     * @return true if the device's flush succeeded
     * @throws ControlException INVALID_PARAMS if no controller has that socket
     */
    public boolean remove(Path socket) throws ControlException {
        controlLock.lock();
        try {
            Controller controller = controllers.remove(normalize(socket));
            if (controller == null) {
                throw ControlException.invalidParams("no controller on socket " + normalize(socket));
            }
            boolean flushed = controller.close();
            LOG.log(System.Logger.Level.INFO, "controller on " + controller.socket() + " removed"
                    + (flushed ? "" : " (its flush failed)"));
            return flushed;
        } finally {
            controlLock.unlock();
        }
    }

    /** The controller on {@code socket} (any spelling of the path), or null. */
    public Controller find(Path socket) {
        controlLock.lock();
        try {
            return controllers.get(normalize(socket));
        } finally {
            controlLock.unlock();
        }
    }

    /** The controllers, in the order they were added. */
    public List<Controller> controllers() {
        controlLock.lock();
        try {
            return new ArrayList<>(controllers.values());
        } finally {
            controlLock.unlock();
        }
    }

    /** What {@link #requestShutdown()} runs (on a thread of its own); ServerMain's clean shutdown. */
    public void onShutdownRequest(Runnable action) {
        this.shutdownRequest = Objects.requireNonNull(action, "action");
    }

    /**
     * Asks for the clean shutdown ({@code server_shutdown}) and returns at once: the action runs on a new thread,
     * so the caller (a control-plane session the shutdown will close) is never joined by itself.
     */
    public void requestShutdown() {
        Thread.ofPlatform().name("nvme-server-shutdown-request").start(shutdownRequest);
    }

    /** {@link #closeAll()}, for try-with-resources. */
    @Override
    public void close() {
        closeAll();
    }

    /**
     * Removes every controller (each flushed and closed, its socket removed); further {@link #add}s are refused.
     * Idempotent.
     *
     * @return true if every flush succeeded
     */
    public boolean closeAll() {
        controlLock.lock();
        try {
            closed = true;
            boolean allFlushed = true;
            for (Controller controller : controllers.values()) {
                allFlushed &= controller.close();
            }
            if (!controllers.isEmpty()) {
                LOG.log(System.Logger.Level.INFO, "closed controllers " + controllers.keySet().stream()
                        .map(Path::toString).collect(Collectors.joining(", ")));
            }
            controllers.clear();
            return allFlushed;
        } finally {
            controlLock.unlock();
        }
    }
}
