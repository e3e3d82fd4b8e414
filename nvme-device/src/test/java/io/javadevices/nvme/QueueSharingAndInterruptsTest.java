package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

class QueueSharingAndInterruptsTest {

    @Test
    void twoSubmissionQueuesShareOneCompletionQueue() {
        try (Fixture f = Fixture.of("queues", "3", "namespaces", "null:1G")) {
            f.driver.enable();
            f.driver.setNumberOfQueues(3);
            f.driver.allocateDbbuf();
            f.driver.enableMsix(4);
            HostQueue owner = f.driver.createQueuePair(1, 16, 256, 1);
            HostQueue second = f.driver.createSharedSq(2, 16, owner);
            HostQueue third = f.driver.createSharedSq(3, 16, owner);
            assertTrue(f.driver.sendDbbuf().ok());
            long buf = f.host.allocatePages(1);
            Set<Long> expected = new HashSet<>();
            int cid = 1000;
            for (int round = 0; round < 40; round++) {
                for (HostQueue q : new HostQueue[] {owner, second, third}) {
                    for (int i = 0; i < 5; i++) {
                        q.queueWithCid(Command.read(1, i, 1, buf, 0), cid);
                        expected.add((long) q.qid << 32 | cid);
                        cid++;
                    }
                    q.ringSq();
                }
                int want = 15;
                long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
                while (want > 0 && System.nanoTime() < deadline) {
                    for (Completion c : owner.reap()) {
                        assertTrue(c.ok());
                        assertTrue(expected.remove((long) c.sqid() << 32 | c.cid()), "unexpected " + c);
                        want--;
                    }
                }
                assertEquals(0, want);
            }
            assertTrue(expected.isEmpty());
            assertEquals(1, f.driver.admin(Command.deleteCq(1)).sct(), "CQ in use");
        }
    }

    /**
     * A second SQ attaches to a CQ while the first SQ's worker is posting to it: the first one's
     * lock-free posts must be over before the pair posts under the CQ lock, or tail and phase race
     * (lost, duplicated or mis-phased CQEs). Each round uses a fresh CQ; bounded in time.
     */
    @Test
    void secondSqJoiningABusyCompletionQueueLosesNoCompletion() {
        try (Fixture f = Fixture.of("queues", "2", "namespaces", "null:1G")) {
            f.driver.enable();
            f.driver.setNumberOfQueues(2);
            f.driver.enableMsix(3);
            long buf = f.host.allocatePages(1);
            long end = System.nanoTime() + Duration.ofMillis(1500).toNanos();
            int rounds = 0;
            while (System.nanoTime() < end && rounds < 300) {
                rounds++;
                HostQueue owner = f.driver.createQueuePair(1, 64, 256, 1);
                Set<Long> expected = new HashSet<>();
                for (int cid = 0; cid < 60; cid++) {
                    owner.queueWithCid(Command.read(1, cid, 1, buf, 0), cid);
                    expected.add(1L << 32 | cid);
                }
                owner.ringSq(); // the first worker posts while the second SQ is being created
                HostQueue second = f.driver.createSharedSq(2, 64, owner);
                for (int cid = 1000; cid < 1060; cid++) {
                    second.queueWithCid(Command.read(1, cid, 1, buf, 0), cid);
                    expected.add(2L << 32 | cid);
                }
                second.ringSq();
                long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
                while (!expected.isEmpty() && System.nanoTime() < deadline) {
                    for (Completion c : owner.reap()) {
                        assertTrue(c.ok(), c.toString());
                        assertTrue(expected.remove((long) c.sqid() << 32 | c.cid()), "duplicate or stray " + c);
                    }
                }
                assertTrue(expected.isEmpty(), "round " + rounds + ": lost " + expected.size() + " completions");
                assertTrue(f.driver.admin(Command.deleteSq(2)).ok());
                assertTrue(f.driver.admin(Command.deleteSq(1)).ok());
                assertTrue(f.driver.admin(Command.deleteCq(1)).ok());
                assertTrue(owner.pollFor(Duration.ZERO).isEmpty(), "nothing after the last expected CQE");
            }
        }
    }

    @Test
    void interruptCoalescingStillDeliversAtIdle() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "null:1G")) {
            f.driver.bringUp(1, 64, true);
            assertTrue(f.driver.admin(Command.setFeatures(0x08, 0x0107)).ok()); // THR 8 entries, TIME 100 µs
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            long before = f.host.interrupts().count(1);
            for (int i = 0; i < 50; i++) {
                // QD1: the aggregation threshold is never reached; the idle flush must interrupt.
                assertTrue(q.execute(Command.read(1, i, 1, buf, 0)).ok());
            }
            assertTrue(f.host.interrupts().count(1) > before);
            int commands = DbbufTest.runStreaming(f, q, buf, 3000, 32);
            assertEquals(3000, commands);
            assertTrue(f.stat(NvmeStatistics.INTERRUPTS) <= f.stat(NvmeStatistics.IO_COMMANDS) + f.stat(NvmeStatistics.ADMIN_COMMANDS));
        }
    }

    @Test
    void interruptsDisabledQueueStillCompletes() {
        try (Fixture f = Fixture.of("queues", "1")) {
            f.driver.enable();
            f.driver.setNumberOfQueues(1);
            f.driver.enableMsix(2);
            long cq = f.host.allocatePages(1), sq = f.host.allocatePages(1);
            assertTrue(f.driver.admin(Command.createCq(1, 16, cq, 1, false)).ok());
            assertTrue(f.driver.admin(Command.createSq(1, 16, sq, 1)).ok());
            long before = f.host.interrupts().count(1);
            f.host.mmioWrite32(0, 0x1008, 0); // nothing submitted
            assertEquals(before, f.host.interrupts().count(1));
        }
    }
}
