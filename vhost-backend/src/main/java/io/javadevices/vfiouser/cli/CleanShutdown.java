package io.javadevices.vfiouser.cli;

import io.javadevices.pci.PciDevice;
import io.javadevices.vfiouser.server.VfioUserServer;
import io.javadevices.vfiouser.sys.Threads;

import java.io.IOException;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;

/**
 * The clean shutdown of a server process (SIGTERM, SIGINT, the control plane's {@code server_shutdown}), for any
 * number of controllers:
 * <ol>
 *   <li>every server stops accepting and disconnects its client; the session teardown resets the device, which
 *       finishes or fails the commands in flight ({@link VfioUserServer#stopServing()}, {@link PciDevice#reset()});</li>
 *   <li>every device is flushed ({@link PciDevice#flush()}: NVMe flushes each namespace's backend), so what the
 *       guests were told is written is durable;</li>
 *   <li>every server is closed: the device released and the socket files it created removed (an inherited
 *       socket's file is left to its owner).</li>
 * </ol>
 * Steps 1 and 2 run for all controllers at once (one thread each: a slow backend's flush does not hold up the
 * others); step 3 follows when all are done. A flush that throws is a failure: it is reported, and the process's
 * exit status says so ({@link #run}: 0 if every flush succeeded, 1 otherwise).
 */
public final class CleanShutdown {
    private CleanShutdown() {
    }

    /**
     * Shuts {@code servers} down and prints one line per failed flush on {@code err}.
     *
     * @return the exit status: 0 if every flush succeeded, 1 otherwise
     */
    public static int run(List<VfioUserServer> servers, PrintStream err) {
        List<String> failures = shutdown(servers);
        for (String f : failures) {
            err.println("nvme-server: " + f);
        }
        err.println("nvme-server: stopped " + servers.size() + " controller(s): "
                + (failures.isEmpty() ? "every device flushed" : failures.size() + " flush(es) failed")
                + ", sockets closed (the socket files this process created removed)");
        err.flush();
        return failures.isEmpty() ? 0 : 1;
    }

    /**
     * Shuts {@code servers} down (the three steps above).
     *
     * @return one message per device whose flush failed, in the order of {@code servers}; empty if all succeeded
     */
    public static List<String> shutdown(List<VfioUserServer> servers) {
        String[] failure = new String[servers.size()];
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < servers.size(); i++) {
            VfioUserServer server = servers.get(i);
            int index = i;
            threads.add(Thread.ofPlatform().name("shutdown " + server.socketPath())
                    .start(() -> failure[index] = stopAndFlush(server)));
        }
        for (Thread t : threads) {
            Threads.joinUninterruptibly(t);
        }
        for (VfioUserServer server : servers) {
            server.close();
        }
        List<String> failures = new ArrayList<>();
        for (String f : failure) {
            if (f != null) {
                failures.add(f);
            }
        }
        return failures;
    }

    /** Steps 1 and 2 for one server; the failure message, or null if its device is flushed. */
    private static String stopAndFlush(VfioUserServer server) {
        if (server.isClosed()) {
            return null; // shut down before (controller_remove, an earlier shutdown): its device was flushed then
        }
        try {
            server.stopServing();
            PciDevice device = server.device();
            if (device != null) {
                device.flush();
            }
            return null;
        } catch (IOException | RuntimeException e) {
            String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
            return "flush of the device on " + server.socketPath() + " failed: " + m.replace('\n', ' ');
        }
    }
}
