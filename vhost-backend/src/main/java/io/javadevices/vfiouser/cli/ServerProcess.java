package io.javadevices.vfiouser.cli;

import io.javadevices.pci.DeviceControl.ControlException;
import io.javadevices.vfiouser.host.Controller;
import io.javadevices.vfiouser.host.ControllerHost;
import io.javadevices.vfiouser.host.ControllerSpec;
import io.javadevices.vfiouser.rpc.RpcMethods;
import io.javadevices.vfiouser.metrics.MetricsEndpoint;
import io.javadevices.vfiouser.metrics.PrometheusMetrics;
import io.javadevices.vfiouser.rpc.RpcServer;
import io.javadevices.vfiouser.server.VfioUserServer;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * The running server process: a {@link ControllerHost} with the command line's first controller (if any) and the
 * control plane (if {@code --rpc-socket}) and the metrics endpoint (if {@code --metrics-port}), until SIGTERM / SIGINT
 * ({@link ShutdownSignals}) or {@code server_shutdown}, then {@link CleanShutdown}.
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
        ControllerHost host = ControllerHost.withInstalledPlugins(settings.defaults, settings.workers);
        CountDownLatch shutdownRequested = new CountDownLatch(1);
        host.onShutdownRequest(shutdownRequested::countDown);
        Controller first = null;
        RpcServer rpc = null;
        MetricsEndpoint metrics = null;
        try {
            if (settings.socket != null) {
                if (settings.activationNote != null) {
                    System.err.println("nvme-server: " + settings.activationNote);
                }
                first = host.add(new ControllerSpec(settings.socket, settings.plugin.name(), settings.pluginOptions,
                        settings.listenerFd));
            }
            if (settings.rpcSocket != null) {
                rpc = RpcServer.start(settings.rpcSocket, settings.defaults.allowUids(), new RpcMethods(host)
                        .prometheus(controllers -> PrometheusMetrics.renderServers(servers(controllers))));
            }
            if (settings.metricsPort != null) {
                metrics = MetricsEndpoint.start(settings.metricsPort, () -> servers(host.controllers()));
            }
        } catch (ControlException e) {
            closeQuietly(rpc);
            host.close();
            throw new IllegalStateException(e.getMessage(), e);
        } catch (Exception e) {
            closeQuietly(rpc);
            host.close();
            throw e;
        }
        RpcServer control = rpc;
        MetricsEndpoint endpoint = metrics;
        // SIGTERM / SIGINT: the same clean stop as server_shutdown, with its exit status (see ShutdownSignals).
        ShutdownSignals.install(signal -> shutdownRequested.countDown());
        CountDownLatch stopped = new CountDownLatch(1);
        Thread hook = new Thread(() -> {
            // Other ways out (SIGHUP, System.exit elsewhere): the same clean stop, only its exit status is lost.
            stop(control, endpoint, host);
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
        if (endpoint != null) {
            out.println("metrics on " + endpoint.url());
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
        if (shutdownRequested.getCount() == 0) { // SIGTERM, SIGINT or server_shutdown
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException alreadyShuttingDown) {
                return stopped.await(30, TimeUnit.SECONDS) ? 0 : 1;
            }
            return stop(control, endpoint, host) ? 0 : 1;
        }
        // The hook ran (another signal) or a fatal accept error.
        if (stopped.await(5, TimeUnit.SECONDS)) {
            return 0;
        }
        stop(control, endpoint, host);
        throw new IllegalStateException("the server stopped accepting clients");
    }

    private static List<VfioUserServer> servers(List<Controller> controllers) {
        return controllers.stream().map(Controller::server).toList();
    }

    private static void closeQuietly(RpcServer rpc) {
        if (rpc != null) {
            rpc.close();
        }
    }

    /**
     * Without a control plane the process lives as long as its one controller accepts clients (a
     * single-controller server ends with its socket); with one it serves until asked to stop.
     */
    private static boolean stillServing(Controller first, RpcServer control) {
        if (control != null) {
            return control.isServing();
        }
        return first != null && first.serving();
    }

    /**
     * Stops the control plane and the metrics endpoint, then every controller with {@link CleanShutdown} (one line
     * on stderr per failed flush); true if every flush succeeded.
     */
    private static boolean stop(RpcServer control, MetricsEndpoint metrics, ControllerHost host) {
        if (control != null) {
            control.close();
        }
        if (metrics != null) {
            metrics.close();
        }
        int status = CleanShutdown.run(servers(host.controllers()), System.err);
        return host.closeAll() && status == 0; // the controllers are closed already: this clears the registry
    }
}
