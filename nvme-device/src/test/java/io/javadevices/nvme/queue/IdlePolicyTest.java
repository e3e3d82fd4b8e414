package io.javadevices.nvme.queue;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The spin / nap / park decisions, without threads: each follows from the settings and the last busy period. */
class IdlePolicyTest {
    private static final IdlePolicy.Settings SETTINGS = new IdlePolicy.Settings(300, 500, 1_000_000, 2000, 50_000);

    @Test
    void singleCommandPeriodSpinsThenParksWithoutNapping() {
        IdlePolicy p = new IdlePolicy(SETTINGS, false);
        p.ran(1);
        assertEquals(300_000, p.spinNanos(true));
        assertEquals(0, p.spinNanos(true), "only the first look after a busy period spins");
        assertEquals(0, p.napNanos(true));
        assertEquals(2_000_000, p.parkNanos(true));
        assertEquals(50_000_000, p.parkNanos(false));
        assertEquals(50_000_000, p.busMasterWaitNanos());
    }

    @Test
    void deepPeriodWithShadowNapsAfterAShortSpin() {
        IdlePolicy p = new IdlePolicy(SETTINGS, false);
        p.ran(8);
        assertEquals(IdlePolicy.NAP_SPIN_NANOS, p.spinNanos(true));
        assertEquals(500_000, p.napNanos(true));
        assertEquals(0, p.napNanos(false), "a queue that lost its shadow re-arms and parks");
    }

    @Test
    void deepPeriodWithoutShadowNeverNaps() {
        IdlePolicy p = new IdlePolicy(SETTINGS, false);
        p.ran(8);
        assertEquals(300_000, p.spinNanos(false));
        assertEquals(0, p.napNanos(false));
    }

    @Test
    void napWindowZeroMeansReArmAtOnce() {
        IdlePolicy p = new IdlePolicy(new IdlePolicy.Settings(300, 500, 0, 2000, 50_000), false);
        p.ran(8);
        p.spinNanos(true);
        assertEquals(0, p.napNanos(true));
    }

    @Test
    void polledQueuesNeverSpinAndLookEveryNap() {
        IdlePolicy p = new IdlePolicy(SETTINGS, true);
        p.ran(1);
        assertEquals(0, p.spinNanos(false));
        assertEquals(500_000, p.parkNanos(false));
        IdlePolicy admin = new IdlePolicy(SETTINGS.admin(), true);
        assertEquals(1_000_000, admin.parkNanos(false), "the polled admin queue looks every millisecond");
        assertEquals(2_000_000, new IdlePolicy(SETTINGS.admin(), false).parkNanos(true), "parks are per controller");
    }

    @Test
    void napHalvesWhileLooksFindTheSameCountAndGrowsBackWhenItShrinks() {
        IdlePolicy p = new IdlePolicy(SETTINGS, false);
        p.ran(8);
        p.spinNanos(true);
        for (int i = 0; i < 2; i++) { // two looks that each find the guest's whole depth of 8
            long nap = p.napNanos(true);
            p.napped(nap, nap);
            p.ran(8);
        }
        p.spinNanos(true);
        assertEquals(250_000, p.napNanos(true));
        for (int i = 0; i < 10; i++) {
            long nap = p.napNanos(true);
            p.napped(nap, nap);
            p.ran(8);
            p.spinNanos(true);
        }
        assertEquals(IdlePolicy.NAP_FLOOR_NANOS, p.napNanos(true), "never below the floor");
        long nap = p.napNanos(true);
        p.napped(nap, nap);
        p.ran(2); // the count shrank: a guest limited by its own speed
        p.spinNanos(true);
        assertEquals(2 * IdlePolicy.NAP_FLOOR_NANOS, p.napNanos(true));
    }

    @Test
    void anOversleptNapStaysLong() {
        IdlePolicy p = new IdlePolicy(SETTINGS, false);
        p.ran(8);
        p.spinNanos(true);
        for (int i = 0; i < 5; i++) {
            long nap = p.napNanos(true);
            p.napped(nap, nap * 3); // the host's CPUs are busy
            p.ran(8);
            p.spinNanos(true);
        }
        assertEquals(500_000, p.napNanos(true));
    }

    @Test
    void aDeepPeriodWithOperationsInFlightNapsWithoutSpinning() {
        IdlePolicy p = new IdlePolicy(SETTINGS, false);
        p.ran(8);
        assertEquals(false, p.spinning(IdlePolicy.LAG_MIN_IN_FLIGHT, true), "completions wake the worker: no spin");
        assertEquals(500_000, p.napNanos(true), "EventIdx lags while the backend works");
        assertEquals(0, p.napNanos(false));
    }

    @Test
    void aSingleCommandInFlightStillSpinsOnceItCompletes() {
        IdlePolicy p = new IdlePolicy(SETTINGS, false);
        p.ran(1);
        assertEquals(false, p.spinning(1, true));
        assertEquals(0, p.napNanos(true), "QD1: no nap, the guest waits for this completion");
        assertEquals(true, p.spinning(0, true), "after the completion: the spin for the guest's next command");
    }

    @Test
    void withOperationsInFlightTheNapWindowRunsFromTheLastCommand() throws InterruptedException {
        IdlePolicy p = new IdlePolicy(new IdlePolicy.Settings(300, 500, 1000, 2000, 50_000), false);
        p.ran(8);
        p.spinning(IdlePolicy.LAG_MIN_IN_FLIGHT, true);
        assertEquals(500_000, p.napNanos(true));
        Thread.sleep(5);
        p.spinning(IdlePolicy.LAG_MIN_IN_FLIGHT, true); // looks without new commands do not renew the window
        assertEquals(0, p.napNanos(true), "a backend that stops completing ends in the re-armed park");
        p.ran(4);
        p.spinning(IdlePolicy.LAG_MIN_IN_FLIGHT, true);
        assertEquals(500_000, p.napNanos(true), "new commands start a new window");
    }

    @Test
    void oneOperationInFlightKeepsEventIdxArmed() {
        IdlePolicy p = new IdlePolicy(SETTINGS, false);
        p.ran(4);
        assertEquals(false, p.spinning(IdlePolicy.LAG_MIN_IN_FLIGHT - 1, true));
        assertEquals(0, p.napNanos(true), "a refill would wait for the only operation: it rings instead");
    }
}
