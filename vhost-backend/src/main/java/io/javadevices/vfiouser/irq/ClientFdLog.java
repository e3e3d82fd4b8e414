package io.javadevices.vfiouser.irq;

import java.util.concurrent.atomic.LongAdder;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.IRQ_INTX;

/**
 * Counts a client's bad interrupt fds and logs them rate-limited: the first refusal and the first
 * resample-fd failure of each session get one WARNING line, later ones only count (a client could
 * otherwise flood the log with one line per SET_IRQS). Socket thread only, except the counters.
 */
final class ClientFdLog {
    private static final System.Logger LOG = System.getLogger(EventfdInterrupts.class.getName());

    private final LongAdder refused = new LongAdder();
    private final LongAdder resampleFailures = new LongAdder();
    private final LongAdder reblocked = new LongAdder();
    private volatile boolean reblockedLogged;
    private volatile boolean refusalLogged;
    private volatile boolean resampleFailureLogged;

    /** An fd given for {@code index}/{@code vector} (-1: the INTx resample fd) was refused. */
    void refused(int index, int vector, String why) {
        refused.increment();
        if (!refusalLogged) {
            refusalLogged = true;
            String what = vector < 0 ? "INTx resample fd" : "interrupt fd for index " + index + " vector " + vector;
            LOG.log(System.Logger.Level.WARNING, "refused the client's " + what + ": " + why
                    + " (SET_IRQS answered EINVAL; further refusals this session are only counted)");
        }
    }

    /** Poll reported {@code revents} with POLLHUP/POLLERR/POLLNVAL on the resample fd; it was de-assigned. */
    void resampleFailed(short revents) {
        resampleFailures.increment();
        if (!resampleFailureLogged) {
            resampleFailureLogged = true;
            LOG.log(System.Logger.Level.WARNING, "the client's INTx resample fd reported poll revents 0x"
                    + Integer.toHexString(revents & 0xFFFF) + " (hang-up or error); de-assigned it, index "
                    + IRQ_INTX + " is unmasked by SET_IRQS UNMASK only");
        }
    }

    /**
     * The client's eventfd for {@code index}/{@code vector} was found blocking again (its O_NONBLOCK
     * cleared on the shared file description) or saturated when the server drained it.
     */
    void reblocked(int index, int vector) {
        reblocked.increment();
        if (!reblockedLogged) {
            reblockedLogged = true;
            LOG.log(System.Logger.Level.WARNING, "the client made its interrupt eventfd for index " + index
                    + " vector " + vector + " blocking again or saturated it; drained it (a worker blocked"
                    + " writing to it is woken, the interrupt is lost; further cases this session are only counted)");
        }
    }

    long reblocked() {
        return reblocked.sum();
    }

    /** A new client session starts: log its first misbehaviour again. */
    void newSession() {
        reblockedLogged = false;
        refusalLogged = false;
        resampleFailureLogged = false;
    }

    long refused() {
        return refused.sum();
    }

    long resampleFailures() {
        return resampleFailures.sum();
    }
}
