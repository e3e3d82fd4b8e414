package io.javadevices.nvme.backend;

/**
 * io_uring cannot be used here; the message says why (the kernel's errno and what it usually means), so that
 * the engine factory can fall back to the thread pool and report the reason at start. An
 * {@link UnsupportedOperationException}, so a caller that only knows "this engine is not supported" catches it.
 */
public final class UringUnavailableException extends UnsupportedOperationException {
    public UringUnavailableException(String message) {
        super(message);
    }
}
