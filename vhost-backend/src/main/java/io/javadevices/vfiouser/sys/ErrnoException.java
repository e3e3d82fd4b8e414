package io.javadevices.vfiouser.sys;

import java.io.IOException;

/**
 * A system call failed. Thrown by {@link LibC} on the calling thread; carries the {@code errno} the
 * call left behind (captured with {@code Linker.Option.captureCallState("errno")}).
 */
public final class ErrnoException extends IOException {
    private final int errno;
    private final String call;

    public ErrnoException(String call, int errno) {
        super(call + " failed: " + Errno.name(errno));
        this.call = call;
        this.errno = errno;
    }

    /** The positive errno value. */
    public int errno() {
        return errno;
    }

    /**
     * True if the call failed for want of descriptors or memory (EMFILE, ENFILE, ENOMEM): a listener keeps
     * listening and retries, rather than stop serving.
     */
    public boolean outOfResources() {
        return errno == Errno.EMFILE || errno == Errno.ENFILE || errno == Errno.ENOMEM;
    }

    /** The name of the failed call, e.g. {@code "recvmsg"}. */
    public String call() {
        return call;
    }
}
