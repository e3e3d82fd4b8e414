package io.javadevices.vfiouser.sys;

/** Waiting for the server's own threads (accept, session, shutdown workers). */
public final class Threads {
    private Threads() {
    }

    /**
     * Waits until {@code t} has ended, even across interrupts (the interrupt is kept for the caller): a server
     * that stops must not return while one of its threads can still touch a client or a device. Returns at
     * once for null or the calling thread itself.
     */
    public static void joinUninterruptibly(Thread t) {
        if (t == null || t == Thread.currentThread()) {
            return;
        }
        boolean interrupted = false;
        while (t.isAlive()) {
            try {
                t.join();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }
}
