package io.javadevices.nvme.nbd;

import io.javadevices.nvme.backend.AsyncIo;
import io.javadevices.nvme.backend.BlockBackend;
import io.javadevices.nvme.backend.IoEngine;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.ref.WeakReference;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * A namespace on an NBD export ({@code nbd://HOST[:PORT]/EXPORT}, {@code nbd+unix:///EXPORT?socket=PATH}): whatever
 * {@code qemu-nbd}, {@code qemu-storage-daemon} or {@code nbdkit} serve - qcow2 images, Ceph RBD, iSCSI, NFS.
 * One connection per namespace ({@link NbdConnection}); every queue worker's {@link NbdAsync} puts its requests
 * in flight on it together, and the synchronous methods go the same way and wait ({@link NbdSyncCalls}).
 *
 * <p>Mapping (NVMe → NBD): Read → NBD_CMD_READ; Write → NBD_CMD_WRITE, FUA → NBD_CMD_FLAG_FUA (without
 * NBD_FLAG_SEND_FUA: the write, then NBD_CMD_FLUSH); Flush → NBD_CMD_FLUSH (a no-op without NBD_FLAG_SEND_FLUSH);
 * Write Zeroes → NBD_CMD_WRITE_ZEROES with NO_HOLE (without NBD_FLAG_SEND_WRITE_ZEROES: writes of zeroes);
 * deallocate → NBD_CMD_WRITE_ZEROES allowing holes, else NBD_CMD_TRIM, else nothing (see {@link NbdAsync#deallocate}).
 * Reads and writes larger than the server's maximum block size are split into several requests.
 *
 * <p>Failures: a lost session fails its requests and every new one with {@code -ENOTCONN} (Namespace Not Ready,
 * retryable) while a monitor thread reconnects with exponential back-off (100 ms doubling to 5 s), logging each
 * change of state once; a request without a reply after {@link #DEFAULT_TIMEOUT_NANOS} ends the session (its late
 * reply can then never be taken for another request's). A reconnected export of another size is refused: the
 * namespace stays failed rather than present different data at the same LBAs.
 */
public final class NbdBackend implements BlockBackend {
    private static final System.Logger LOG = System.getLogger(NbdBackend.class.getName());
    /** A request without a reply for this long ends the session (QEMU's NBD client has no default; Linux nbd uses 30 s). */
    public static final long DEFAULT_TIMEOUT_NANOS = TimeUnit.SECONDS.toNanos(30);
    private static final long HANDSHAKE_NANOS = TimeUnit.SECONDS.toNanos(10);
    private static final long FIRST_BACKOFF_NANOS = TimeUnit.MILLISECONDS.toNanos(100);
    private static final long MAX_BACKOFF_NANOS = TimeUnit.SECONDS.toNanos(5);
    private static final long TICK_NANOS = TimeUnit.MILLISECONDS.toNanos(50);
    private static final int MAX_ASYNC = 1 << 16;

    private final NbdUri uri;
    private final NbdExport first;
    private final long timeoutNanos;
    private final NbdSyncCalls sync = new NbdSyncCalls();
    private final NbdAsync syncAsync;
    private final Thread monitor;
    private volatile NbdConnection connection;
    /**
     * The session installed last, even once it ended: {@link #detach} clears {@link #connection} at the start of
     * a session's teardown, and close() must still wait for that teardown (it completes the session's requests
     * through the workers' engines, which may be closed once close() returns).
     */
    private volatile NbdConnection latest;
    private volatile boolean closed;
    /** Sessions lost so far (EOF, reset, a protocol error from the server, a timeout), for the statistics. */
    private final java.util.concurrent.atomic.LongAdder losses = new java.util.concurrent.atomic.LongAdder();
    /** The last loss logged and when (reader threads, one at a time: a session ends before the next begins). */
    private String lastLoss;
    private long lastLossLogged;
    /** Registered workers by cookie id; weak, so a stopped worker's id is reused (id 0: the synchronous calls). */
    @SuppressWarnings("unchecked")
    private volatile WeakReference<NbdAsync>[] registry = new WeakReference[16];

    /** Connects to {@code uri} with the default request timeout. */
    public static NbdBackend open(String uri) {
        try {
            return new NbdBackend(NbdUri.parse(uri), DEFAULT_TIMEOUT_NANOS);
        } catch (IOException e) {
            throw new IllegalArgumentException("namespace " + uri + ": " + e.getMessage(), e);
        }
    }

    /** Connects and negotiates now: an unreachable server or unknown export is an error at start. */
    public NbdBackend(NbdUri uri, long timeoutNanos) throws IOException {
        this.uri = uri;
        this.timeoutNanos = timeoutNanos;
        this.syncAsync = new NbdAsync(this, sync, 0, false);
        registry[0] = new WeakReference<>(syncAsync);
        NbdConnection opened = NbdConnection.open(this, HANDSHAKE_NANOS);
        this.first = opened.export();
        this.connection = opened;
        this.latest = opened;
        this.monitor = Thread.ofPlatform().daemon().name("nbd-monitor " + uri).start(this::monitorLoop);
        LOG.log(System.Logger.Level.INFO, "{0}: {1} bytes, flags {2}, requests up to {3} bytes", uri, first.size(),
                first.describeFlags(), first.maxPayload());
    }

    NbdUri uri() {
        return uri;
    }

    /** The live session, or null while there is none. */
    NbdConnection connection() {
        return connection;
    }

    long timeoutNanos() {
        return timeoutNanos;
    }

    /** True while a session is up (requests are sent); false while reconnecting or once closed. */
    public boolean connected() {
        return connection != null;
    }

    /** Sessions lost so far, each failing its requests with -ENOTCONN (a statistic). */
    public long connectionLosses() {
        return losses.sum();
    }

    /** The server's minimum block size: an LBA size below it would send requests the server refuses. */
    public int minimumBlockSize() {
        return first.minBlock();
    }

    @Override
    public long size() {
        return first.size();
    }

    @Override
    public boolean readOnly() {
        return first.readOnly();
    }

    /** The server may cache writes: it takes NBD_CMD_FLUSH (NBD_FLAG_SEND_FLUSH), so the guest must flush. */
    @Override
    public boolean volatileWriteCache() {
        return first.canFlush();
    }

    /** Deallocation is a Write Zeroes that may punch holes, which reads back zeroes (see {@link NbdAsync#deallocate}). */
    @Override
    public boolean deallocatedReadsZero() {
        return first.canWriteZeroes();
    }

    @Override
    public AsyncIo openAsync(IoEngine engine) {
        if (engine.capacity() > 0x10000) {
            return null; // a cookie numbers tags in 16 bits: a larger engine runs this namespace synchronously
        }
        synchronized (this) {
            WeakReference<NbdAsync>[] table = registry;
            for (int id = 1; id < MAX_ASYNC; id++) {
                if (id == table.length) {
                    table = Arrays.copyOf(table, Math.min(MAX_ASYNC, table.length * 2));
                }
                if (table[id] == null || table[id].get() == null) {
                    NbdAsync async = new NbdAsync(this, engine, id, true);
                    table[id] = new WeakReference<>(async);
                    registry = table;
                    return async;
                }
            }
            return null; // 65535 live workers: this one runs synchronously
        }
    }

    /** The request slot a cookie names, or null. Reader threads. */
    NbdRequest lookup(long cookie) {
        WeakReference<NbdAsync>[] table = registry;
        int id = (int) (cookie >>> 48);
        int tag = (int) (cookie >>> 32) & 0xFFFF;
        WeakReference<NbdAsync> ref = id < table.length ? table[id] : null;
        NbdAsync async = ref == null ? null : ref.get();
        return async == null || tag >= async.slots.length ? null : async.slots[tag];
    }

    // ------------------------------------------------------------------ synchronous methods

    @Override
    public void read(long offset, MemorySegment dst) throws IOException {
        sync.call((tag, data) -> {
            data.add(dst);
            syncAsync.read(tag, offset, data);
        }, timeoutNanos, "NBD read at " + offset);
    }

    @Override
    public void write(long offset, MemorySegment src) throws IOException {
        sync.call((tag, data) -> {
            data.add(src);
            syncAsync.write(tag, offset, data, false);
        }, timeoutNanos, "NBD write at " + offset);
    }

    @Override
    public void flush() throws IOException {
        sync.call((tag, unused) -> syncAsync.flush(tag), timeoutNanos, "NBD flush");
    }

    @Override
    public void writeZeroes(long offset, long length) throws IOException {
        sync.call((tag, unused) -> syncAsync.writeZeroes(tag, offset, length, false), timeoutNanos,
                "NBD write zeroes at " + offset);
    }

    @Override
    public void deallocate(long offset, long length) throws IOException {
        sync.call((tag, unused) -> syncAsync.deallocate(tag, offset, length), timeoutNanos,
                "NBD deallocate at " + offset);
    }

    /** The export's size is the NBD server's: resize the export there (a reconnect of another size is refused). */
    @Override
    public String notResizable() {
        return "an NBD namespace's size belongs to its server (the export's size); resize the export there and add it again";
    }

    @Override
    public String describe() {
        return "nbd:" + uri;
    }

    @Override
    public void close() {
        closed = true;
        LockSupport.unpark(monitor);
        try {
            monitor.join(15_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        NbdConnection last = latest; // not connection: a session being torn down has left it already
        if (last != null) {
            last.dropAndAwait("the namespace was closed");
        }
    }

    // ------------------------------------------------------------------ sessions

    /** The session ended: no new request goes to it. Its reader thread. */
    void detach(NbdConnection ended) {
        synchronized (this) {
            if (connection == ended) {
                connection = null;
            }
        }
    }

    /** Fails every request of {@code ended} with -ENOTCONN. Its reader thread, once nothing else touches them. */
    void failAll(NbdConnection ended) {
        for (WeakReference<NbdAsync> ref : registry) {
            NbdAsync async = ref == null ? null : ref.get();
            if (async == null) {
                continue;
            }
            for (NbdRequest request : async.slots) {
                int state = request.state();
                if (state != NbdRequest.IDLE && request.connection == ended) {
                    request.finish(state, -NbdProtocol.ENOTCONN);
                }
            }
        }
    }

    /** Logs the loss once and lets the monitor reconnect. */
    void lost(NbdConnection ended, String reason) {
        losses.increment();
        long now = System.nanoTime();
        // Once per change of state; a server that breaks every session the same way is reported once a minute.
        if (!closed && (!reason.equals(lastLoss) || now - lastLossLogged > TimeUnit.MINUTES.toNanos(1))) {
            lastLoss = reason;
            lastLossLogged = now;
            LOG.log(System.Logger.Level.WARNING, "{0}: connection lost ({1}); requests fail with ENOTCONN while"
                    + " reconnecting", uri, reason);
        }
        LockSupport.unpark(monitor);
    }

    private void monitorLoop() {
        long backoff = FIRST_BACKOFF_NANOS;
        long nextAttempt = System.nanoTime() + backoff;
        String lastFailure = null;
        long connectedAt = System.nanoTime();
        long lastScan = connectedAt;
        long scanInterval = Math.clamp(timeoutNanos / 4, TICK_NANOS, TimeUnit.SECONDS.toNanos(1));
        while (!closed) {
            LockSupport.parkNanos(this, TICK_NANOS);
            NbdConnection live = connection;
            long now = System.nanoTime();
            if (live != null) {
                if (now - lastScan >= scanInterval) { // every slot of every worker: not every tick
                    lastScan = now;
                    expire(live, now);
                }
                if (now - connectedAt > MAX_BACKOFF_NANOS) {
                    backoff = FIRST_BACKOFF_NANOS; // a session that lasted: the next loss is retried after 100 ms
                }
                nextAttempt = now + backoff; // a session that breaks at once keeps the back-off growing
                continue;
            }
            if (now - nextAttempt < 0) {
                continue;
            }
            try {
                NbdConnection fresh = NbdConnection.open(this, HANDSHAKE_NANOS);
                if (fresh.export().size() != first.size()) {
                    fresh.dropAndAwait("size changed");
                    throw new NbdException("export '" + uri.export() + "' now has " + fresh.export().size()
                            + " bytes instead of " + first.size() + "; the namespace stays failed");
                }
                boolean installed;
                synchronized (this) {
                    installed = !closed;
                    if (installed) {
                        connection = fresh;
                        latest = fresh;
                    }
                }
                if (!installed) { // outside the lock: the session's teardown takes it (detach)
                    fresh.dropAndAwait("the namespace was closed");
                    return;
                }
                connectedAt = System.nanoTime();
                backoff = Math.min(backoff * 2, MAX_BACKOFF_NANOS);
                LOG.log(System.Logger.Level.INFO, "{0}: reconnected", uri);
                lastFailure = null;
            } catch (IOException | RuntimeException e) {
                if (!e.getMessage().equals(lastFailure)) { // once per kind of failure, not once per attempt
                    lastFailure = e.getMessage();
                    LOG.log(System.Logger.Level.WARNING, "{0}: reconnecting failed ({1}); retrying every {2} ms at most",
                            uri, lastFailure, MAX_BACKOFF_NANOS / 1_000_000);
                }
                nextAttempt = System.nanoTime() + backoff;
                backoff = Math.min(backoff * 2, MAX_BACKOFF_NANOS);
            }
        }
    }

    /** Ends the session if one of its requests has waited longer than the timeout. */
    private void expire(NbdConnection live, long now) {
        for (WeakReference<NbdAsync> ref : registry) {
            NbdAsync async = ref == null ? null : ref.get();
            if (async == null) {
                continue;
            }
            for (NbdRequest request : async.slots) {
                if (request.state() != NbdRequest.IDLE && request.connection == live && now - request.deadline > 0) {
                    live.drop("no reply within " + timeoutNanos / 1_000_000 + " ms");
                    return;
                }
            }
        }
    }
}
