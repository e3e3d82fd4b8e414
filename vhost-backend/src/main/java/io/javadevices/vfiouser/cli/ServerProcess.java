package io.javadevices.vfiouser.cli;

import io.javadevices.pci.DeviceControl.ControlException;
import io.javadevices.vfiouser.host.Controller;
import io.javadevices.vfiouser.host.ControllerHost;
import io.javadevices.vfiouser.host.ControllerSpec;
import io.javadevices.vfiouser.rpc.RpcMethods;
import io.javadevices.vfiouser.rpc.RpcServer;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * The running server process: a {@link ControllerHost} with the command line's first controller (if any) and the
 * control plane (if {@code --rpc-socket}), until Ctrl-C / SIGTERM (the shutdown hook) or {@code server_shutdown}.
 */
final class ServerProcess {
    private final ServerSettings settings;
    private final PrintWriter out;

    ServerProcess(ServerSettings settings, PrintWriter out) {
        this.settings = settings;
        this.out = out;
    }

    /** Serves until asked to stop; the exit code (0: every device flushed; 1: a flush failed). */
    int run() throws Exception {
        ControllerHost host = ControllerHost.withInstalledPlugins(settings.defaults, null);
        CountDownLatch shutdownRequested = new CountDownLatch(1);
        host.onShutdownRequest(shutdownRequested::countDown);
        Controller first = null;
        RpcServer rpc = null;
        try {
            if (settings.socket != null) {
                first = host.add(new ControllerSpec(settings.socket, settings.plugin.name(), settings.pluginOptions));
            }
            if (settings.rpcSocket != null) {
                rpc = RpcServer.start(settings.rpcSocket, settings.defaults.allowUids(), new RpcMethods(host));
            }
        } catch (ControlException e) {
            host.close();
            throw new IllegalStateException(e.getMessage(), e);
        } catch (Exception e) {
            host.close();
            throw e;
        }
        RpcServer control = rpc;
        CountDownLatch stopped = new CountDownLatch(1);
        Thread hook = new Thread(() -> {
            stop(control, host);
            // java.util.logging is already shut down inside shutdown hooks: say it on stderr.
            System.err.println("nvme-server: stopped, sockets removed");
            stopped.countDown();
        }, "nvme-server-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        if (first != null) {
            Path path = first.socket();
            out.println("serving " + first.deviceName() + " on " + path
                    + "; attach it to QEMU with (guest RAM must be shared):");
            out.println("  -m 1G -object memory-backend-memfd,id=mem,size=1G,share=on -machine memory-backend=mem \\");
            out.println("  -device '{\"driver\":\"vfio-user-pci\",\"socket\":{\"type\":\"unix\",\"path\":\"" + path + "\"}}'");
            out.println("(memory-backend size must equal -m; press Ctrl-C to stop)");
        }
        if (control != null) {
            out.println("control plane (JSON-RPC) on " + control.path() + "; e.g. nvme-server rpc --rpc-socket "
                    + control.path() + " controller_list");
        }
        out.flush();
        if (first != null && settings.statsInterval > 0) {
            Controller shown = first;
            Thread.ofPlatform().daemon().name("nvme-server-stats").start(new StatusLines(settings.plugin,
                    () -> shown.device().statistics(), Duration.ofSeconds(settings.statsInterval), out));
        }
        while (!shutdownRequested.await(200, TimeUnit.MILLISECONDS)) {
            if (stopped.getCount() == 0 || !stillServing(first, control)) {
                break;
            }
        }
        if (shutdownRequested.getCount() == 0) { // server_shutdown: the same clean stop as the hook's
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException alreadyShuttingDown) {
                return stopped.await(30, TimeUnit.SECONDS) ? 0 : 1;
            }
            boolean flushed = stop(control, host);
            System.err.println("nvme-server: stopped (server_shutdown), sockets removed");
            return flushed ? 0 : 1;
        }
        // Ctrl-C (the hook closes everything) or a fatal accept error.
        if (stopped.await(5, TimeUnit.SECONDS)) {
            return 0;
        }
        stop(control, host);
        throw new IllegalStateException("the server stopped accepting clients");
    }

    /**
     * Without a control plane the process lives as long as its one controller accepts clients (the behaviour
     * before issue 15); with one it serves until asked to stop.
     */
    private static boolean stillServing(Controller first, RpcServer control) {
        if (control != null) {
            return control.isServing();
        }
        return first != null && first.serving();
    }

    /** Stops the control plane, then every controller; true if every flush succeeded. */
    private static boolean stop(RpcServer control, ControllerHost host) {
        if (control != null) {
            control.close();
        }
        return host.closeAll();
    }
}
