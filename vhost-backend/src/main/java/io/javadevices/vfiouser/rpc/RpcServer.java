package io.javadevices.vfiouser.rpc;

import io.javadevices.vfiouser.server.PeerGate;
import io.javadevices.vfiouser.sys.ErrnoException;
import io.javadevices.vfiouser.sys.LibC;
import io.javadevices.vfiouser.sys.Threads;
import io.javadevices.vfiouser.transport.UnixListener;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The control plane: JSON-RPC 2.0 over a Unix stream socket, one request per line and one response per line, in
 * order ({@link RpcSession}), for {@code socat}, a few lines of any language, or {@code nvme-server rpc}.
 *
 * <p><b>Safety.</b> The socket is created like the device sockets ({@link UnixListener}: mode 0600, a stale
 * socket replaced, anything else refused) and a client is admitted only if its SO_PEERCRED uid is allowed
 * ({@link PeerGate}, the same list as the device sockets' {@code --allow-uid}). At most {@value #MAX_CLIENTS}
 * clients are connected at once (more are closed at accept and counted), each on a thread of its own, so a
 * client that stops reading or sends garbage holds only its own thread; calls themselves run one at a time under
 * the host's control lock ({@link RpcMethods#call}), which a session never holds while it reads or writes.
 */
public final class RpcServer implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(RpcServer.class.getName());
    /** Most control-plane clients connected at once. */
    public static final int MAX_CLIENTS = 16;
    private static final int SOCKET_MODE = 0600;

    private final UnixListener listener;
    private final PeerGate peers;
    private final RpcMethods methods;
    private final ClientLog clientLog = new ClientLog();
    private final List<RpcSession> sessions = new ArrayList<>();
    private final Thread acceptThread;
    private final AtomicLong clientsTotal = new AtomicLong();
    private final AtomicLong clientsRefused = new AtomicLong();
    final AtomicLong requests = new AtomicLong();
    final AtomicLong errors = new AtomicLong();
    final AtomicLong oversized = new AtomicLong();
    private volatile boolean closed;

    private RpcServer(UnixListener listener, PeerGate peers, RpcMethods methods) {
        this.listener = listener;
        this.peers = peers;
        this.methods = methods;
        this.acceptThread = Thread.ofPlatform().name("rpc-accept " + listener.path().getFileName()).daemon()
                .unstarted(this::acceptLoop);
    }

    /**
     * Binds {@code path} (mode 0600) and starts accepting.
     *
     * @param allowUids the uids whose clients are served, or null for the default (own uid and root)
     * @throws IOException if the path is in use by a live server or is not a socket
     */
    public static RpcServer start(Path path, int[] allowUids, RpcMethods methods) throws IOException {
        Objects.requireNonNull(methods, "methods");
        PeerGate gate = new PeerGate(allowUids == null ? PeerGate.defaultUids() : allowUids, "JSON-RPC");
        RpcServer server = new RpcServer(UnixListener.bind(path, SOCKET_MODE), gate, methods);
        server.acceptThread.start();
        LOG.log(System.Logger.Level.INFO, "JSON-RPC control plane listening on " + server.path()
                + ", clients allowed from uids " + gate.describe());
        return server;
    }

    /** The socket's absolute path. */
    public Path path() {
        return listener.path();
    }

    RpcMethods methods() {
        return methods;
    }

    ClientLog clientLog() {
        return clientLog;
    }

    private void acceptLoop() {
        while (!closed) {
            int fd;
            try {
                fd = listener.accept();
            } catch (ErrnoException e) {
                if (closed) {
                    return;
                }
                if (e.outOfResources()) {
                    clientLog.warn("accept on " + path() + " failed (" + e.getMessage() + "); retrying");
                    try {
                        Thread.sleep(100);
                    } catch (InterruptedException stop) {
                        return;
                    }
                    continue;
                }
                LOG.log(System.Logger.Level.ERROR, "accept on " + path() + " failed; the control plane stops", e);
                return;
            } catch (IOException e) {
                if (!closed) {
                    LOG.log(System.Logger.Level.ERROR, "accept on " + path() + " failed; the control plane stops", e);
                }
                return;
            }
            if (fd < 0) {
                return;
            }
            if (peers.admits(fd, path())) {
                admit(fd);
            }
        }
    }

    private void admit(int fd) {
        synchronized (sessions) {
            sessions.removeIf(RpcSession::ended);
            if (closed || sessions.size() >= MAX_CLIENTS) {
                LibC.closeQuietly(fd);
                clientsRefused.incrementAndGet();
                if (!closed) {
                    clientLog.warn("refused a JSON-RPC client on " + path() + ": " + MAX_CLIENTS
                            + " clients are connected already");
                }
                return;
            }
            long number = clientsTotal.incrementAndGet();
            RpcSession session;
            try {
                session = new RpcSession(this, fd, "rpc#" + number);
            } catch (RuntimeException | OutOfMemoryError e) {
                LibC.closeQuietly(fd);
                LOG.log(System.Logger.Level.ERROR, "cannot set up JSON-RPC client rpc#" + number, e);
                return;
            }
            sessions.add(session);
            session.start();
        }
    }

    /**
     * {@code clients.total}, {@code clients.connected}, {@code clients.refused} (too many), {@code clients.denied}
     * (uid not allowed), {@code requests}, {@code errors} (error responses), {@code lines.oversized}.
     */
    public Map<String, Long> counters() {
        Map<String, Long> c = new LinkedHashMap<>();
        c.put("clients.total", clientsTotal.get());
        long connected;
        synchronized (sessions) {
            connected = sessions.stream().filter(s -> !s.ended()).count();
        }
        c.put("clients.connected", connected);
        c.put("clients.refused", clientsRefused.get());
        c.put("clients.denied", peers.denied());
        c.put("requests", requests.get());
        c.put("errors", errors.get());
        c.put("lines.oversized", oversized.get());
        return c;
    }

    /** True while the accept thread listens. */
    public boolean isServing() {
        return !closed && acceptThread.isAlive();
    }

    /**
     * Stops accepting, disconnects every client (a call in progress finishes first: its session then sees the
     * disconnect) and removes the socket file. Idempotent; must not be called from a session's thread.
     */
    @Override
    public void close() {
        List<RpcSession> open;
        synchronized (sessions) {
            if (closed) {
                return;
            }
            closed = true;
            open = new ArrayList<>(sessions);
        }
        listener.wakeup();
        Threads.joinUninterruptibly(acceptThread);
        for (RpcSession s : open) {
            s.disconnect();
        }
        for (RpcSession s : open) {
            s.join();
        }
        listener.close();
        LOG.log(System.Logger.Level.INFO, "JSON-RPC control plane on " + path() + " stopped");
    }
}
