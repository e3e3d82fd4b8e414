package io.javadevices.vfiouser.protocol;

/**
 * A request the server refuses: the session answers it with an error reply carrying {@link #errno()}
 * (libvfio-user's {@code ERROR_INT(errno)} followed by one {@code do_reply}). Thrown by message decoding
 * and by the request handlers; never leaves the session. No stack trace: it is a client's mistake, not
 * the server's, and a hostile client may send many.
 */
public final class VfioUserError extends Exception {
    private final int errno;

    /** @param reason why, for a debug log line; null when the errno says it all */
    public VfioUserError(int errno, String reason) {
        super(reason, null, false, false);
        this.errno = errno;
    }

    public VfioUserError(int errno) {
        this(errno, null);
    }

    /** The positive errno for the reply header. */
    public int errno() {
        return errno;
    }
}
