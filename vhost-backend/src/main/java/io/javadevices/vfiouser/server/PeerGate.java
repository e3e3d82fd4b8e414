package io.javadevices.vfiouser.server;

import io.javadevices.vfiouser.sys.FileIdentity;
import io.javadevices.vfiouser.sys.LibC;
import io.javadevices.vfiouser.transport.UnixSocket;
import io.javadevices.vfiouser.transport.UnixSocket.PeerCredentials;

import java.util.Arrays;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Collectors;

/**
 * Admits a freshly accepted client only if the uid the kernel recorded for it at connect(2)
 * ({@code SO_PEERCRED}, unix(7): the peer cannot forge it) is on the allow list. The socket mode alone
 * is not enough: a 0666 socket, or a group the admin did not think through, lets any local user map
 * memory into this process and drive the device. A refused client is closed at once, before any byte is
 * read or sent, counted, and logged at most once per {@link #LOG_INTERVAL_NANOS} (a local user looping
 * on connect must not flood the log); the server goes on serving the others.
 *
 * <p><b>Threads.</b> {@link #admits} is called by the accept thread only; {@link #denied} by anyone.
 */
public final class PeerGate {
    private static final System.Logger LOG = System.getLogger(VfioUserServer.class.getName());
    static final long LOG_INTERVAL_NANOS = 10_000_000_000L;
    static final int ROOT = 0;
    /** (uid_t) -1: not a uid (chown(2) uses it for "no change"). */
    static final int INVALID_UID = -1;

    private final int[] allowed;
    private final AtomicLong denied = new AtomicLong();
    private long lastLogNanos;
    private boolean loggedOnce;
    private long unlogged;
    private long reports;

    private final String clientKind;

    /** @param allowed the uids (raw 32 bits of a uid_t) allowed to connect; at least one */
    PeerGate(int[] allowed) {
        this(allowed, "vfio-user");
    }

    /**
     * A gate for another kind of client (e.g. the control plane's), named in the refusal log line.
     *
     * @param allowed    the uids (raw 32 bits of a uid_t) allowed to connect; at least one
     * @param clientKind e.g. {@code JSON-RPC}
     */
    public PeerGate(int[] allowed, String clientKind) {
        this.allowed = validate(allowed);
        this.clientKind = clientKind;
    }

    /** The default allow list: the server's own effective uid and root. */
    public static int[] defaultUids() {
        return Arrays.stream(new int[] {FileIdentity.geteuid(), ROOT}).distinct().toArray();
    }

    /** A sorted, duplicate-free copy of {@code uids}; rejects an empty list and (uid_t) -1. */
    public static int[] validate(int[] uids) {
        if (uids == null || uids.length == 0) {
            throw new IllegalArgumentException("the allowed uid list must not be empty");
        }
        for (int uid : uids) {
            if (uid == INVALID_UID) {
                throw new IllegalArgumentException("4294967295 ((uid_t) -1) is not a uid");
            }
        }
        return Arrays.stream(uids).distinct().sorted().toArray();
    }

    /**
     * True if the client on {@code fd} may be served; otherwise the fd is already closed, the refusal
     * counted and (rate-limited) logged.
     */
    public boolean admits(int fd, Object where) {
        PeerCredentials peer = UnixSocket.peerCredentials(fd);
        if (peer != null && Arrays.binarySearch(allowed, peer.uid()) >= 0) {
            return true;
        }
        denied.incrementAndGet(); // before close: a client that sees EOF also sees the count
        LibC.closeQuietly(fd);
        log(peer, where);
        return false;
    }

    private void log(PeerCredentials peer, Object where) {
        long now = System.nanoTime();
        if (loggedOnce && now - lastLogNanos < LOG_INTERVAL_NANOS) {
            unlogged++;
            return;
        }
        String more = unlogged == 0 ? "" : " (" + unlogged + " more refused since the last report)";
        LOG.log(System.Logger.Level.WARNING, "refused a " + clientKind + " client on " + where + ": "
                + (peer == null ? "its credentials could not be read" : peer + " is not in the allowed uids "
                + describe()) + more);
        loggedOnce = true;
        reports++;
        lastLogNanos = now;
        unlogged = 0;
    }

    /** Clients refused by uid so far. */
    public long denied() {
        return denied.get();
    }

    /** Refusal log lines written so far (for tests of the rate limit). */
    long reports() {
        return reports;
    }

    /** The allowed uids, e.g. "[0, 1000]". */
    public String describe() {
        return Arrays.stream(allowed).mapToLong(Integer::toUnsignedLong).sorted().mapToObj(Long::toString)
                .collect(Collectors.joining(", ", "[", "]"));
    }
}
