package io.javadevices.vfiouser.cli;

import sun.misc.Signal;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;

/**
 * Catches SIGTERM (systemd's, docker's and kill's stop signal) and SIGINT (Ctrl-C) so the server can shut down
 * cleanly and choose its exit status.
 *
 * <p><b>Why {@code sun.misc.Signal}.</b> A shutdown hook runs on SIGTERM too, but the JVM has already decided to
 * exit with status 143 and a hook cannot change it, and java.util.logging is already shut down inside hooks; the
 * exit status must say whether every flush succeeded. signalfd(2) through FFM would need SIGTERM blocked in every
 * thread before any starts, and the JVM starts its threads before {@code main} (a signal delivered to one of them
 * would never reach the signalfd). {@code sun.misc.Signal} (module {@code jdk.unsupported}, exported to the class
 * path and kept for exactly this use, JEP 260) replaces the JVM's handler: the JVM then does not exit, and the
 * handler, run on a thread of its own, only tells the main thread to shut down.
 *
 * <p>The first signal starts the clean shutdown; a second one while it runs (a flush stuck on a dead backend)
 * halts the process at once with status 1, as an operator pressing Ctrl-C twice expects.
 */
final class ShutdownSignals {
    private ShutdownSignals() {
    }

    /** Installs the handlers: {@code onFirst} gets the first signal's name ({@code TERM} or {@code INT}). */
    static void install(Consumer<String> onFirst) {
        AtomicBoolean received = new AtomicBoolean();
        for (String name : new String[] {"TERM", "INT"}) {
            Signal.handle(new Signal(name), signal -> {
                if (received.compareAndSet(false, true)) {
                    onFirst.accept(signal.getName());
                } else {
                    System.err.println("nvme-server: second signal (SIG" + signal.getName()
                            + ") during the clean shutdown: exiting now, devices not all flushed");
                    System.err.flush();
                    Runtime.getRuntime().halt(1);
                }
            });
        }
    }
}
