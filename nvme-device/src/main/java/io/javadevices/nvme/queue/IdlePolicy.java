package io.javadevices.nvme.queue;

/**
 * How one worker waits once its queue is empty: spin, nap or park, and for how long. The worker keeps the
 * doorbell protocol (EventIdx re-arm, fences, the parked flag); this object only decides durations, from its
 * per-controller {@link Settings} and what the last busy period looked like. Owned by the worker's thread.
 *
 * <ul>
 * <li>A busy period of one command (QD1-like) spins {@code spin} for the next one, then re-arms: for a
 *     guest that waits for each completion the doorbell wake-up is faster than the next look. Polled
 *     doorbells never spin: nothing can wake a parked worker, so a spin that misses only delays the look.
 * <li>With DBBUF, a busy period that ran several commands (the guest keeps the queue deep) ends in naps of
 *     {@code nap} for up to {@code napWindow}, with EventIdx left one slot behind the head. While EventIdx
 *     lags, Linux {@code nvme_dbbuf_need_event} is false, so the guest only writes the shadow slot: no
 *     doorbell message and no core burnt spinning (on a host with fewer cores than vCPUs + workers that CPU
 *     belongs to the vCPUs). A short spin before the first nap still catches a guest that refills at once
 *     (KVM, or a VMM in the same process), which a nap would only make wait.
 * <li>The nap adapts ({@link #ran}): it halves while looks keep finding the same count (a guest waiting with
 *     its whole queue depth, which on a host with CPU to spare is lost throughput) and doubles back when the
 *     count shrinks or the host is CPU-starved (naps oversleep; a waiting vCPU then leaves its CPU to others).
 * <li>Polled doorbells: idle looks every {@code nap} (at least 1 µs).
 * <li>Otherwise a park with a safety-net timeout ({@code parkDbbuf} / {@code parkTrapped}). Correctness never
 *     depends on it (the re-arm protocol and doorbell wake-ups do); tests raise it to prove no wake-up is lost.
 * </ul>
 */
public final class IdlePolicy {
    /**
     * Per-controller wait parameters, in microseconds (options {@code poll-us}, {@code nap-us},
     * {@code nap-window-us}, {@code park-dbbuf-us}, {@code park-trapped-us}).
     *
     * @param spinMicros      spin on the tail this long after a single-command busy period (0 = never)
     * @param napMicros       sleep between looks: always with polled doorbells, with DBBUF within the window
     * @param napWindowMicros DBBUF: how long to nap after the queue went idle before re-arming (0 = at once)
     * @param parkDbbufMicros safety-net park of an idle DBBUF queue
     * @param parkTrappedMicros safety-net park of an idle queue with trapped (MMIO) doorbells, and the wait
     *                        while Bus Master Enable is clear
     */
    public record Settings(int spinMicros, int napMicros, int napWindowMicros, int parkDbbufMicros,
                           int parkTrappedMicros) {
        /** The admin queue: no spin, no naps (it has no shadow slot), 1 ms looks when polled; same parks. */
        public Settings admin() {
            return new Settings(0, ADMIN_POLLED_LOOK_MICROS, 0, parkDbbufMicros, parkTrappedMicros);
        }
    }

    /** Idle look interval of a polled admin queue: admin commands are rare and not latency-critical. */
    static final int ADMIN_POLLED_LOOK_MICROS = 1000;
    /** Commands a busy period must run for the worker to nap rather than re-arm EventIdx at once. */
    static final int NAP_MIN_BATCH = 2;
    /**
     * The operations in flight from which a queue lets EventIdx lag while they run: a refill then waits for the
     * next of them to complete (or the nap's end) instead of ringing. One in flight is QD1, which keeps its spin.
     * A threshold of 16 was tried: under TCG an NBD queue at QD32 is often below it (the guest holds many of its
     * commands between completion and resubmission), and most of the doorbells came back (README, backends).
     */
    static final int LAG_MIN_IN_FLIGHT = 2;
    /** The spin before a nap: long enough for a guest that refills at once, short next to a nap. */
    static final long NAP_SPIN_NANOS = 20_000L;
    /** The shortest nap: below the kernel's 50 us timer slack a park is no shorter. */
    static final long NAP_FLOOR_NANOS = 50_000L;

    private final long spinNanos;
    private final long napNanos;
    private final long napWindowNanos;
    private final long parkDbbufNanos;
    private final long parkTrappedNanos;
    private final boolean polled;

    private boolean busy;
    /** When the queue last went idle after a busy period (start of the nap window). */
    private long idleSince;
    /** Commands run since the queue last went idle, and whether the current idle period naps. */
    private int busyCommands;
    private boolean napping;
    /** With operations in flight: whether this busy period's nap window has started (see {@link #spinning}). */
    private boolean napDecided;
    /** The current nap (between the floor and nap-us), what the last look found, whether the host is busy. */
    private long napNow;
    private int lastLook;
    private boolean lookAfterNap;
    private boolean cpuBusy;
    /** The spin under way ends at this {@code nanoTime} (0: none); the nap under way (0: none) and its start. */
    private long spinUntil;
    private long napAsked;
    private long napStart;

    IdlePolicy(Settings settings, boolean polled) {
        this.spinNanos = settings.spinMicros() * 1000L;
        this.napNanos = settings.napMicros() * 1000L;
        this.napWindowNanos = settings.napWindowMicros() * 1000L;
        this.parkDbbufNanos = settings.parkDbbufMicros() * 1000L;
        this.parkTrappedNanos = settings.parkTrappedMicros() * 1000L;
        this.polled = polled;
        this.napNow = napNanos;
    }

    /** The worker found and ran {@code commands} commands. */
    void ran(int commands) {
        if (lookAfterNap) {
            lookAfterNap = false;
            adaptNap(commands);
        }
        busyCommands += commands;
        busy = true;
        napDecided = false;
    }

    /**
     * The queue is empty: how long to spin on the tail before waiting (0 = not at all). Non-zero only on the
     * first call after a busy period, which also decides whether this idle period naps.
     */
    long spinNanos(boolean shadowed) {
        if (!busy) {
            return 0;
        }
        busy = false;
        decideNap(shadowed);
        busyCommands = 0;
        if (napping) {
            return Math.min(spinNanos, NAP_SPIN_NANOS);
        }
        return polled ? 0 : spinNanos;
    }

    /** Starts the nap window if the busy period was deep and the queue has a shadow doorbell. */
    private void decideNap(boolean shadowed) {
        idleSince = System.nanoTime();
        napping = busyCommands >= NAP_MIN_BATCH && napNanos > 0 && napWindowNanos > 0 && shadowed;
    }

    /**
     * The queue is empty: true while the worker should spin (look again at once), the poll-by-poll form of
     * {@link #spinNanos}, whose spin starts at the first look after a busy period without operations in flight.
     * With operations still in flight there is no spin (their completions wake the worker), but with at least
     * {@value #LAG_MIN_IN_FLIGHT} of them a deep busy period starts its nap window at once: EventIdx then lags
     * while the backend works, so a guest that keeps its queue deep only writes the shadow tail, and the worker
     * finds the new commands when the next completion (or the nap's end) wakes it, instead of a doorbell message
     * per refill. The window runs from the last command fetched, so a backend that stops completing ends in the
     * re-armed park, not in naps.
     */
    boolean spinning(int inFlight, boolean shadowed) {
        if (busy && inFlight == 0) {
            long spin = spinNanos(shadowed);
            spinUntil = spin > 0 ? System.nanoTime() + spin : 0;
        } else if (busy && !napDecided && inFlight >= LAG_MIN_IN_FLIGHT) {
            napDecided = true;
            decideNap(shadowed);
        }
        if (spinUntil != 0) {
            if (System.nanoTime() - spinUntil < 0) {
                return true;
            }
            spinUntil = 0;
        }
        return false;
    }

    /** A nap of {@code nanos} begins (the worker's thread sleeps at most that long for this queue). */
    void napStarted(long nanos) {
        napAsked = nanos;
        napStart = System.nanoTime();
    }

    /** True while a nap is under way (its EventIdx lags: nothing to arm). */
    boolean inNap() {
        return napAsked != 0;
    }

    /** The worker looks again: ends the nap under way, if any ({@link #napped}); true if there was one. */
    boolean napOver() {
        if (napAsked == 0) {
            return false;
        }
        napped(napAsked, System.nanoTime() - napStart);
        napAsked = 0;
        return true;
    }

    /** How long to nap now with EventIdx left behind; 0 = do not nap, re-arm and park. */
    long napNanos(boolean shadowed) {
        return shadowed && napping && System.nanoTime() - idleSince < napWindowNanos ? napNow : 0;
    }

    /**
     * A nap of {@code asked} ns took {@code took} ns. Woken much later than asked: the host's CPUs are busy
     * (e.g. TCG vCPUs), and a guest that waits for us then leaves its CPU to others, so a long nap costs nothing.
     */
    void napped(long asked, long took) {
        cpuBusy = took > asked + asked / 4 + 100_000;
        lookAfterNap = true;
    }

    /** The idle park once re-armed (or without DBBUF): a look interval when polled, else the safety net. */
    long parkNanos(boolean shadowed) {
        return polled ? Math.max(napNanos, 1000) : shadowed ? parkDbbufNanos : parkTrappedNanos;
    }

    /** The wait while the function may not master the bus (the controller kicks its workers when it may). */
    long busMasterWaitNanos() {
        return parkTrappedNanos;
    }

    /**
     * Adapts the nap to what the look after it found: halves (down to {@link #NAP_FLOOR_NANOS}) when the host
     * has CPU to spare and the count repeats (the guest waits for us with its whole depth); doubles back when
     * the count shrinks with the nap (a guest limited by its own speed) or the host is CPU-starved.
     */
    private void adaptNap(int found) {
        boolean halve = !cpuBusy && found >= 4 && found == lastLook;
        if (halve) {
            napNow = Math.max(napNow / 2, Math.min(NAP_FLOOR_NANOS, napNanos));
        } else if (found * 4 < lastLook * 3 || cpuBusy) {
            napNow = Math.min(napNow * 2, napNanos);
        }
        lastLook = found;
    }
}
