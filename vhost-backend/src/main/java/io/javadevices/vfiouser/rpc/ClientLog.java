package io.javadevices.vfiouser.rpc;

/**
 * The control plane's log of client misbehaviour (malformed lines, oversized lines, refused connections):
 * at most one line per {@link #INTERVAL_NANOS}, with the number of events left unlogged since, so a client
 * looping on garbage cannot flood the log. Every event is counted by the caller regardless.
 */
final class ClientLog {
    private static final System.Logger LOG = System.getLogger(RpcServer.class.getName());
    static final long INTERVAL_NANOS = 10_000_000_000L;

    private long lastNanos;
    private boolean loggedOnce;
    private long unlogged;

    /** Logs {@code message} at WARNING unless a line was logged within the interval. */
    synchronized void warn(String message) {
        long now = System.nanoTime();
        if (loggedOnce && now - lastNanos < INTERVAL_NANOS) {
            unlogged++;
            return;
        }
        LOG.log(System.Logger.Level.WARNING, message + (unlogged == 0 ? ""
                : " (" + unlogged + " more since the last report)"));
        loggedOnce = true;
        lastNanos = now;
        unlogged = 0;
    }
}
