package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.pci.GuestMemoryException;
import org.junit.jupiter.api.Test;

import java.time.Duration;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Naps with Doorbell Buffer Config: after a deep busy period the worker leaves EventIdx behind and looks
 * at the shadow tail every {@code nap-us} for {@code nap-window-us}, so the guest rings no doorbell; then
 * it re-arms EventIdx and waits for one. Safety-net timers are raised: only looks and doorbells may make
 * progress.
 */
class NapTest {
    private static int eventIdx(Fixture f, int qid) {
        try {
            return f.host.memory().readInt(f.driver.eventIdxPage() + 8L * qid);
        } catch (GuestMemoryException e) {
            throw new AssertionError(e);
        }
    }

    /** Brings up one 64-entry I/O queue pair with DBBUF, as Linux does. */
    private static HostQueue oneQueue(Fixture f) {
        f.driver.bringUp(1, 64, true);
        return f.driver.ioQueue(1);
    }

    private static void batch(HostQueue q, long buf, int commands) {
        for (int i = 0; i < commands; i++) {
            q.queue(Command.read(1, i, 1, buf, 0));
        }
        q.ringSq();
        for (Completion c : q.awaitCompletions(commands, Duration.ofSeconds(5))) {
            assertTrue(c.ok(), c.toString());
        }
    }

    @Test
    void deepBatchesNapAndTheGuestRingsNoDoorbell() throws Exception {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1", "nap-us", "200", "nap-window-us", "200000")) {
            HostQueue q = oneQueue(f);
            long buf = f.host.allocatePages(1);
            batch(q, buf, 16); // first batch: the guest rings (EventIdx was armed at 0)
            long mmioAfterFirst = q.mmioSq;
            for (int round = 0; round < 20; round++) {
                Thread.sleep(1); // a guest's think time: longer than the spin before a nap
                batch(q, buf, 8); // within the 200 ms window, wrapping the 64-entry queue twice: found by a look
            }
            assertEquals(mmioAfterFirst, q.mmioSq, "no SQ doorbell while the worker naps, even across wraps");
            assertTrue(f.stat(NvmeStatistics.WORKER_NAPS) > 0);
            assertNotEquals(q.sqTail(), eventIdx(f, 1), "EventIdx lags behind the tail while napping");
        }
    }

    @Test
    void afterTheWindowEventIdxIsReArmedAndADoorbellWakesTheWorker() throws Exception {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1", "nap-us", "100", "nap-window-us", "2000")) {
            HostQueue q = oneQueue(f);
            long buf = f.host.allocatePages(1);
            batch(q, buf, 16);
            long deadline = System.nanoTime() + Duration.ofSeconds(2).toNanos();
            while (eventIdx(f, 1) != q.sqTail() && System.nanoTime() < deadline) {
                Thread.sleep(1);
            }
            assertEquals(q.sqTail(), eventIdx(f, 1), "window over: EventIdx = the tail the worker stopped at");
            long mmio = q.mmioSq;
            long t0 = System.nanoTime();
            batch(q, buf, 4);
            assertEquals(mmio + 1, q.mmioSq, "the guest rang, as need_event said");
            assertTrue(System.nanoTime() - t0 < Duration.ofSeconds(1).toNanos(), "woken by the doorbell, not a timer");
        }
    }

    @Test
    void singleCommandTrafficDoesNotNap() throws Exception {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1", "nap-us", "500", "nap-window-us", "100000")) {
            HostQueue q = oneQueue(f);
            long buf = f.host.allocatePages(1);
            for (int i = 0; i < 50; i++) {
                batch(q, buf, 1);
                Thread.sleep(1); // a guest's turnaround: longer than the 300 us spin, so the queue goes idle
            }
            // A worker descheduled for over a millisecond between two looks sees two commands in one busy
            // period and naps once; on an idle machine this is 0.
            assertTrue(f.stat(NvmeStatistics.WORKER_NAPS) < 10, "QD1 spins and waits for the doorbell: naps " + f.stat(NvmeStatistics.WORKER_NAPS));
            // Nearly every command rings (EventIdx re-armed at once); a worker descheduled during its spin may
            // still see the next tail before re-arming, so not exactly 50 on a loaded machine.
            assertTrue(q.mmioSq >= 40, "single commands ring the doorbell: " + q.mmioSq);
        }
    }

    @Test
    void napsCanBeSwitchedOff() {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1", "nap-window-us", "0")) {
            HostQueue q = oneQueue(f);
            long buf = f.host.allocatePages(1);
            for (int i = 0; i < 10; i++) {
                batch(q, buf, 8);
            }
            assertEquals(0, f.stat(NvmeStatistics.WORKER_NAPS));
        }
    }

    /**
     * A guest that refills at once (KVM, a VMM in the same JVM: it reaps by spinning on the CQ) gets every
     * batch served even with long naps configured. Only what cannot depend on machine load is asserted: every
     * round completes all 16 commands and the naps are counted. The elapsed time and nap count are printed
     * as a measurement, not asserted: the speed is measured by {@code bench.NvmeSubmitBenchmark}, and the
     * decision that keeps a refill from waiting out a nap (a short spin before napping) is unit-tested by
     * {@code IdlePolicyTest.deepPeriodWithShadowNapsAfterAShortSpin}.
     */
    @Test
    void aGuestThatRefillsAtOnceHasEveryBatchServedDespiteLongNaps() {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1", "nap-us", "5000", "nap-window-us", "100000")) {
            HostQueue q = oneQueue(f);
            long buf = f.host.allocatePages(1);
            int rounds = 200;
            long t0 = System.nanoTime();
            for (int round = 0; round < rounds; round++) {
                for (int i = 0; i < 16; i++) {
                    q.queue(Command.read(1, i, 1, buf, 0));
                }
                q.ringSq();
                int done = 0;
                long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
                while (done < 16 && System.nanoTime() < deadline) {
                    for (Completion c : q.reap()) {
                        assertTrue(c.ok(), "round " + round + ": " + c);
                        done++;
                    }
                }
                assertEquals(16, done, "round " + round + ": all 16 completions");
            }
            long millis = (System.nanoTime() - t0) / 1_000_000;
            assertEquals(rounds * 16L, f.stat(NvmeStatistics.IO_COMMANDS), "every command counted once");
            long naps = f.stat(NvmeStatistics.WORKER_NAPS); // fails if the controller stops reporting naps
            System.out.println("NapTest measurement: " + rounds + " back-to-back batches of 16 took " + millis
                    + " ms, worker naps " + naps);
        }
    }
}
