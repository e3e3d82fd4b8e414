package io.javadevices.vfiouser.server;

import io.javadevices.pci.DeviceContext;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.InterruptSink;
import io.javadevices.pci.PciDevice;
import io.javadevices.pci.WorkerPool;
import io.javadevices.vfiouser.device.DeviceLayout;
import io.javadevices.vfiouser.device.MemfdBarWindows;
import io.javadevices.vfiouser.dma.DmaMappings;
import io.javadevices.vfiouser.irq.EventfdInterrupts;
import io.javadevices.vfiouser.protocol.Capabilities;
import io.javadevices.vfiouser.sys.ErrnoException;
import io.javadevices.vfiouser.sys.FileIdentity;
import io.javadevices.vfiouser.sys.LibC;
import io.javadevices.vfiouser.sys.Threads;
import io.javadevices.vfiouser.transport.UnixListener;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;

/**
 * Serves one {@link PciDevice} over a Unix socket with the vfio-user protocol, so that QEMU's
 * {@code vfio-user-pci} client attaches it as a PCI function:
 * <pre>
 * -device '{"driver":"vfio-user-pci","socket":{"type":"unix","path":"/tmp/nvme.sock"}}'
 * </pre>
 *
 * <p><b>Lifecycle.</b> {@link #start()} creates the device once (through the factory, with a
 * {@link DeviceContext} whose {@link GuestMemory} the server fills from DMA_MAP and whose interrupt sink
 * writes the client's eventfds), binds the socket and starts the accept thread. A client whose uid
 * (SO_PEERCRED) is not allowed ({@link Builder#allowUids}; default: the server's own uid and root) is
 * closed before anything is read from it, counted and logged (rate-limited). One client is served at a
 * time; a second concurrent client is refused (closed, with a WARN line). When a client disconnects or
 * crashes, the server unmaps its guest memory, closes its eventfds, gives the device's direct BAR windows
 * new sealed memory ({@link MemfdBarWindows#renew()}: the former client may keep its mapping of the old
 * pages) and resets the device (a new client is a new VM: QEMU never reconnects, so it must find the
 * device in power-on state), then accepts the next client ({@code SessionTeardown}). {@link #close()} stops everything and deletes the socket file.
 *
 * <p><b>Threads.</b> One accept thread, plus one thread per connected client that reads, handles and
 * answers its messages in order (device BAR handlers run on it). Device workers deliver interrupts
 * directly (an eventfd write) and read guest memory directly.
 *
 * <p><b>Decisions.</b> A BAR region is mmappable only where the device asked for direct BAR memory
 * ({@link io.javadevices.pci.DirectBarMemory}, served by {@link MemfdBarWindows} as sparse-mmap areas);
 * everything else is messages, which keeps posted writes (QEMU turns them off device-wide once any
 * region is mmappable: vfio_user_disable_posted_writes in QEMU hw/vfio-user/proxy.c) and lets the device wake its workers on doorbells; {@code write_multiple} is not
 * advertised (QEMU's flag for it overlaps its "force queued sends" flag, VFIO_PROXY_USE_MULTI 0x16 contains VFIO_PROXY_FORCE_QUEUED 0x4 in QEMU hw/vfio-user/proxy.h, and the
 * batched writes gain nothing without mmapped BARs), but REGION_WRITE_MULTI is parsed if sent; fd-less
 * DMA ranges are acknowledged and not usable for DMA (no DMA_READ/WRITE messages).
 */
public final class VfioUserServer implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(VfioUserServer.class.getName());
    private static final long SUCCESSOR_WAIT_MILLIS = 500;

    private volatile Path socketPath; // from the builder, or an inherited listener's bound path (set at start)
    private final int listenerFd;
    private final int socketMode;
    private final Function<DeviceContext, PciDevice> factory;
    private final Limits limits;
    private final PeerGate peers;
    /** The host's shared queue-polling threads handed to the device, or null (the device makes its own). */
    private final WorkerPool workers;

    private final AtomicLong messages = new AtomicLong();
    private final AtomicLong errorsReplied = new AtomicLong();
    private final AtomicLong clientsTotal = new AtomicLong();
    private final AtomicLong clientsRefused = new AtomicLong();
    private final Object lock = new Object();
    /** Serialises {@link #stopServing()} and {@link #close()}: a flush never starts while a client is leaving. */
    private final Object closing = new Object();
    private boolean released;

    private GuestMemory memory;
    private EventfdInterrupts interrupts;
    private PciDevice device;
    private DeviceLayout layout;
    private MemfdBarWindows barWindows;
    private DmaMappings dma;
    private UnixListener listener;
    private Thread acceptThread;
    private volatile boolean closed;
    private volatile Capabilities clientCapabilities;
    private Connection active;
    private Thread activeThread;

    private VfioUserServer(Builder b) {
        this.socketPath = b.socket;
        this.listenerFd = b.listenerFd;
        this.socketMode = b.socketMode;
        this.factory = b.factory;
        this.limits = b.limits;
        this.peers = new PeerGate(b.allowedUids == null ? PeerGate.defaultUids() : b.allowedUids);
        this.workers = b.workers;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Configures a {@link VfioUserServer}; {@link #socket} and {@link #device} are required. */
    public static final class Builder {
        private Path socket;
        private int socketMode = 0600;
        private Function<DeviceContext, PciDevice> factory;
        private Limits limits = Limits.defaults();
        private int[] allowedUids;
        private int listenerFd = -1;
        private WorkerPool workers;

        private Builder() {
        }

        /**
         * Serves on this inherited listening socket (socket activation, {@code --socket-fd}) instead of binding
         * {@link #socket}: checked and adopted at {@link VfioUserServer#start()} ({@link UnixListener#adopt}),
         * its path is the one it is bound to, and {@link VfioUserServer#close()} never unlinks it.
         */
        public Builder listenerFd(int fd) {
            if (fd < 0) {
                throw new IllegalArgumentException("listener fd must be >= 0: " + fd);
            }
            this.listenerFd = fd;
            return this;
        }

        /**
         * The host's shared queue-polling threads, handed to the device in its {@link DeviceContext#workers()};
         * null (the default) lets the device make its own.
         */
        public Builder workers(WorkerPool pool) {
            this.workers = pool;
            return this;
        }

        /** The Unix socket path to listen on (required). */
        public Builder socket(Path path) {
            this.socket = Objects.requireNonNull(path, "path");
            return this;
        }

        /** Permission bits of the socket file (default 0600). */
        public Builder socketMode(int mode) {
            if ((mode & ~0777) != 0) {
                throw new IllegalArgumentException("socket mode must be within 0777: " + Integer.toOctalString(mode));
            }
            this.socketMode = mode;
            return this;
        }

        /** Creates the device, once, at {@link VfioUserServer#start()} (required). */
        public Builder device(Function<DeviceContext, PciDevice> factory) {
            this.factory = Objects.requireNonNull(factory, "factory");
            return this;
        }

        /**
         * The only uids (checked with SO_PEERCRED at accept; raw 32 bits of a uid_t) whose clients are
         * served; others are closed at once and counted as {@code clients.denied}. Replaces the default,
         * which is the server's own effective uid and root.
         *
         * @throws IllegalArgumentException if empty or containing (uid_t) -1
         */
        public Builder allowUids(int... uids) {
            this.allowedUids = PeerGate.validate(uids);
            return this;
        }

        public Builder limits(Limits limits) {
            this.limits = Objects.requireNonNull(limits, "limits");
            return this;
        }

        public VfioUserServer build() {
            if (socket == null && listenerFd < 0) {
                throw new IllegalStateException("socket path (or an inherited listener fd) is required");
            }
            if (factory == null) {
                throw new IllegalStateException("device factory is required");
            }
            return new VfioUserServer(this);
        }
    }

    /**
     * Creates the device, binds the socket (replacing a stale socket file only if it is a socket nobody
     * listens on), applies the mode and starts accepting. Returns once the socket is listening.
     *
     * @throws IOException if the socket cannot be bound (path in use, not a socket, too long, ...)
     */
    public void start() throws IOException {
        synchronized (lock) {
            if (device != null || closed) {
                throw new IllegalStateException(closed ? "server closed" : "server already started");
            }
            memory = new GuestMemory();
            interrupts = new EventfdInterrupts(limits.maxMsixVectors());
            barWindows = new MemfdBarWindows();
            try {
                device = Objects.requireNonNull(factory.apply(new DeviceContext(memory, interrupts, barWindows, workers)),
                        "device factory returned null");
            } catch (RuntimeException e) {
                interrupts.close();
                barWindows.close();
                throw e;
            }
            try {
                barWindows.seal(); // the device asked for its windows: fix their sizes before any client sees them
                interrupts.attach(device.config());
                layout = new DeviceLayout(device.config(), interrupts, barWindows);
                dma = new DmaMappings(memory, limits.maxDmaMaps(), limits.maxMappedBytes());
                listener = listenerFd >= 0 ? UnixListener.adopt(listenerFd) : UnixListener.bind(socketPath, socketMode);
                socketPath = listener.path();
            } catch (IOException | RuntimeException e) {
                device.close();
                interrupts.close();
                barWindows.close();
                throw e;
            }
            acceptThread = Thread.ofPlatform().name("vfio-user-accept " + socketPath.getFileName()).daemon()
                    .start(this::acceptLoop);
            LOG.log(System.Logger.Level.INFO, "vfio-user server listening on " + listener.path()
                    + (listener.inherited() ? " (inherited fd " + listenerFd + ")" : "")
                    + ", clients allowed from uids " + peers.describe());
            if (FileIdentity.geteuid() == PeerGate.ROOT) {
                LOG.log(System.Logger.Level.WARNING, "running as root: this server maps the guest's memory and opens "
                        + "disk images with root's rights, so a bug or a hostile client reaches far more than the VM "
                        + "needs; run it as an unprivileged user that owns the images and the socket directory, and "
                        + "name QEMU's user with --allow-uid");
            }
        }
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
                    // Out of descriptors or memory: transient, keep listening.
                    LOG.log(System.Logger.Level.WARNING, "accept on " + socketPath + " failed (" + e.getMessage()
                            + "); retrying");
                    sleepQuietly(100);
                    continue;
                }
                LOG.log(System.Logger.Level.ERROR, "accept on " + socketPath + " failed; server stops serving", e);
                return;
            } catch (IOException e) {
                if (!closed) {
                    LOG.log(System.Logger.Level.ERROR, "accept on " + socketPath + " failed; server stops serving", e);
                }
                return;
            }
            if (fd < 0) {
                return;
            }
            if (peers.admits(fd, socketPath)) {
                admit(fd);
            }
        }
    }

    private static void sleepQuietly(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void admit(int fd) {
        Thread previous;
        synchronized (lock) {
            previous = activeThread;
        }
        if (previous != null) {
            // The previous client may have just closed its socket and its session may still be cleaning
            // up: give it a moment before deciding that this is a second concurrent client.
            try {
                previous.join(SUCCESSOR_WAIT_MILLIS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        synchronized (lock) {
            if (closed || (activeThread != null && activeThread.isAlive())) {
                LibC.closeQuietly(fd);
                clientsRefused.incrementAndGet();
                if (!closed) {
                    LOG.log(System.Logger.Level.WARNING, "refused a second vfio-user client on " + socketPath
                            + ": a client is already connected (one client at a time)");
                }
                return;
            }
            long number = clientsTotal.incrementAndGet();
            String name = "#" + number;
            Connection connection;
            try {
                connection = new Connection(this, fd, name);
            } catch (RuntimeException | OutOfMemoryError e) {
                LibC.closeQuietly(fd);
                LOG.log(System.Logger.Level.ERROR, "cannot set up a session for client " + name, e);
                return;
            }
            active = connection;
            LOG.log(System.Logger.Level.INFO, "vfio-user client " + name + " connected on " + socketPath);
            activeThread = Thread.ofPlatform().name("vfio-user-client " + name).daemon().start(connection);
        }
        synchronized (this) {
            notifyAll();
        }
    }

    void sessionEnded(Connection connection) {
        synchronized (lock) {
            if (active == connection) {
                active = null;
            }
        }
        synchronized (this) {
            notifyAll();
        }
    }

    // ------------------------------------------------------------------ package-private for Connection

    Limits limits() {
        return limits;
    }

    DeviceLayout layout() {
        return layout;
    }

    DmaMappings dma() {
        return dma;
    }

    MemfdBarWindows barWindows() {
        return barWindows;
    }

    EventfdInterrupts interrupts() {
        return interrupts;
    }

    void countMessage() {
        messages.incrementAndGet();
    }

    void countErrorReply() {
        errorsReplied.incrementAndGet();
    }

    void clientCapabilities(Capabilities capabilities) {
        this.clientCapabilities = capabilities;
    }

    /** The interrupt sink given to the device: a test seam for the tests of this package, not API. */
    InterruptSink interruptsForTest() {
        return interrupts;
    }

    /** The guest memory given to the device: a test seam for the tests of this package, not API. */
    GuestMemory guestMemoryForTest() {
        return memory;
    }

    // ------------------------------------------------------------------ public API

    /** The device created at {@link #start()} (null before). */
    public PciDevice device() {
        return device;
    }

    /** The absolute socket path. */
    public Path socketPath() {
        Path path = socketPath;
        return path == null ? null : path.toAbsolutePath();
    }

    /**
     * Counters and gauges: {@code dma.maps}, {@code dma.bytes}, {@code dma.deferred} (unmapped, not yet
     * released), {@code irq.fds}, {@code clients.connected}
     * (0/1), {@code clients.total}, {@code messages}, {@code errors.replied}, plus {@code clients.refused},
     * {@code clients.denied} (closed at accept: uid not allowed), {@code irq.signalled}, {@code irq.dropped},
     * {@code irq.saturated} (interrupt writes that found the eventfd counter at its maximum),
     * {@code irq.fds.refused} (SET_IRQS fds that were not eventfds), {@code irq.resample.failures} (resample
     * fds dropped after POLLHUP/POLLERR), {@code irq.fds.reblocked} (client eventfds found made blocking again
     * or saturated when drained).
     */
    public Map<String, Long> resources() {
        Map<String, Long> r = new LinkedHashMap<>();
        r.put("dma.maps", dma == null ? 0L : dma.count());
        r.put("dma.bytes", dma == null ? 0L : dma.mappedBytes());
        r.put("dma.deferred", dma == null ? 0L : dma.deferredCloses());
        r.put("irq.fds", interrupts == null ? 0L : (long) interrupts.clientEventfds());
        boolean connected;
        synchronized (lock) {
            connected = active != null;
        }
        r.put("clients.connected", connected ? 1L : 0L);
        r.put("clients.total", clientsTotal.get());
        r.put("messages", messages.get());
        r.put("workers.threads", workers == null ? 0L : (long) workers.threads());
        r.put("errors.replied", errorsReplied.get());
        r.put("clients.refused", clientsRefused.get());
        r.put("clients.denied", peers.denied());
        r.put("irq.signalled", interrupts == null ? 0L : interrupts.signalled());
        r.put("irq.dropped", interrupts == null ? 0L : interrupts.dropped());
        r.put("irq.saturated", interrupts == null ? 0L : interrupts.saturated());
        r.put("irq.fds.refused", interrupts == null ? 0L : interrupts.refusedFds());
        r.put("irq.resample.failures", interrupts == null ? 0L : interrupts.resampleFailures());
        r.put("irq.fds.reblocked", interrupts == null ? 0L : interrupts.reblockedFds());
        return r;
    }

    /** The capabilities the current (or last) client announced in VERSION, or null. */
    public Capabilities clientCapabilities() {
        return clientCapabilities;
    }

    /** True while the accept thread is alive and listening. */
    public boolean isServing() {
        Thread t = acceptThread;
        return !closed && t != null && t.isAlive();
    }

    /** Waits until at least {@code total} clients have been admitted (connected) since start. */
    public void awaitClientCount(long total, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (this) {
            while (clientsTotal.get() < total) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new IllegalStateException("timed out waiting for client " + total + " (have "
                            + clientsTotal.get() + ")");
                }
                wait(Math.max(1, left / 1_000_000));
            }
        }
    }

    /** Waits until no client is connected (its cleanup finished). */
    public void awaitNoClient(Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (this) {
            while (true) {
                synchronized (lock) {
                    if (active == null) {
                        return;
                    }
                }
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new IllegalStateException("timed out waiting for the client to disconnect");
                }
                wait(Math.max(1, left / 1_000_000));
            }
        }
    }

    /**
     * Stops accepting, disconnects the client (releasing its maps and fds, resetting the device), closes
     * the device and deletes the socket file. Idempotent.
     */
    @Override
    public void close() {
        synchronized (closing) {
            if (released) {
                return;
            }
            released = true;
            stopServing();
            release();
        }
    }

    /** True once {@link #close()} has run (the device is released: nothing left to flush). */
    public boolean isClosed() {
        synchronized (closing) {
            return released;
        }
    }

    /**
     * The first half of {@link #close()}, for a clean shutdown that must flush the device between the two:
     * stops accepting and disconnects the client, whose session teardown resets the device (which finishes
     * or fails its in-flight commands, {@link PciDevice#reset()}); returns once that session has ended.
     * The device stays open (for {@link PciDevice#flush()}) and the socket stays bound until
     * {@link #close()}. Idempotent.
     */
    public void stopServing() {
        synchronized (closing) {
            Thread accept;
            Thread session;
            Connection connection;
            synchronized (lock) {
                if (closed) {
                    return;
                }
                closed = true;
                accept = acceptThread;
            }
            if (listener != null) {
                listener.wakeup();
            }
            Threads.joinUninterruptibly(accept);
            synchronized (lock) {
                session = activeThread;
                connection = active;
            }
            if (connection != null) {
                connection.disconnect();
            }
            Threads.joinUninterruptibly(session);
        }
    }

    private void release() {
        if (listener != null) {
            listener.close();
        }
        if (device != null) {
            try {
                device.close();
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.WARNING, "device close failed", e);
            }
        }
        if (dma != null) {
            dma.unmapAll();
        }
        if (interrupts != null) {
            interrupts.close();
        }
        if (barWindows != null) {
            barWindows.close(); // after device.close(): no worker polls the windows any more
        }
        LOG.log(System.Logger.Level.INFO, "vfio-user server on " + socketPath + " stopped");
    }
}
