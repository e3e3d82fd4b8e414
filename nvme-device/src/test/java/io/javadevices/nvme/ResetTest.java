package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.pci.ConfigSpace;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.*;

/** Controller reset, FLR and PciDevice.reset() while I/O is running: no hang, controller usable again. */
class ResetTest {

    private static List<Thread> startIo(Fixture f, int queues, AtomicBoolean stop, AtomicLong completed) {
        List<Thread> threads = new ArrayList<>();
        for (int qid = 1; qid <= queues; qid++) {
            HostQueue q = f.driver.ioQueue(qid);
            long buf = f.host.allocatePages(8);
            Thread t = Thread.ofPlatform().name("host-io-" + qid).start(() -> {
                int lba = 0;
                while (!stop.get()) {
                    try {
                        while (q.inflight() < Math.min(16, q.capacity())) {
                            q.submit((lba & 1) == 0 ? Command.write(1, lba % 4096, 8, buf, 0) : Command.read(1, lba % 4096, 8, buf, 0));
                            lba++;
                        }
                        completed.addAndGet(q.awaitCompletions(1, Duration.ofMillis(100)).size());
                    } catch (AssertionError | IllegalStateException timeoutAfterReset) {
                        if (stop.get()) {
                            return;
                        }
                        try {
                            Thread.sleep(5);
                        } catch (InterruptedException e) {
                            return;
                        }
                    }
                }
            });
            threads.add(t);
        }
        return threads;
    }

    private static void run(String how) throws Exception {
        try (Fixture f = Fixture.of("queues", "3", "namespaces", "ram:32M")) {
            for (int round = 0; round < 3; round++) {
                f.driver.bringUp(3, 32, round % 2 == 0);
                AtomicBoolean stop = new AtomicBoolean();
                AtomicLong completed = new AtomicLong();
                List<Thread> io = startIo(f, 3, stop, completed);
                long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
                while (completed.get() < 200 && System.nanoTime() < deadline) {
                    Thread.sleep(1);
                }
                assertTrue(completed.get() >= 200, "I/O running before the reset");
                long t0 = System.nanoTime();
                switch (how) {
                    case "cc" -> f.driver.disable();
                    case "flr" -> {
                        f.host.configWrite(f.controller.config().pciExpressCapabilityOffset() + 8, 2, 0x8000);
                        f.host.configWrite(ConfigSpace.COMMAND, 2, 0x6);
                    }
                    default -> {
                        f.controller.reset();
                        f.host.configWrite(ConfigSpace.COMMAND, 2, 0x6);
                    }
                }
                long millis = (System.nanoTime() - t0) / 1_000_000;
                assertTrue(millis < 2000, "reset took " + millis + " ms");
                assertEquals(0, f.driver.readReg32(0x1C) & 1, "not ready after reset");
                assertEquals(0, f.stat(NvmeStatistics.IO_QUEUES));
                long after = f.stat(NvmeStatistics.IO_COMMANDS);
                Thread.sleep(20);
                assertEquals(after, f.stat(NvmeStatistics.IO_COMMANDS), "no command processed after the reset");
                stop.set(true);
                for (Thread t : io) {
                    t.join(5000);
                    assertFalse(t.isAlive());
                }
            }
            f.driver.bringUp(3, 32, true);
            long buf = f.host.allocatePages(1);
            assertTrue(f.driver.ioQueue(2).execute(Command.read(1, 0, 8, buf, 0)).ok());
            assertTrue(f.stat(NvmeStatistics.CONTROLLER_RESETS) >= 3);
            assertEquals(0, f.driver.readReg32(0x1C) & 2, "no CFS");
        }
    }

    @Test
    void controllerDisableDuringIo() throws Exception {
        run("cc");
    }

    @Test
    void functionLevelResetDuringIo() throws Exception {
        run("flr");
    }

    @Test
    void deviceResetDuringIo() throws Exception {
        run("reset");
    }

    @Test
    void unwritableCompletionQueueSetsCfsAndResetRecovers() {
        try (Fixture f = Fixture.of("queues", "1")) {
            f.driver.enable();
            f.driver.setNumberOfQueues(1);
            f.driver.enableMsix(2);
            long extra = 0x2_0000_0000L;
            f.host.memory().map(extra, java.lang.foreign.MemorySegment.ofArray(new long[4096 / 8]));
            long sq = f.host.allocatePages(1);
            assertTrue(f.driver.admin(io.javadevices.nvme.driver.Command.createCq(1, 16, extra, 1, true)).ok());
            assertTrue(f.driver.admin(io.javadevices.nvme.driver.Command.createSq(1, 16, sq, 1)).ok());
            f.host.memory().unmap(extra, 4096); // e.g. a vfio-user DMA_UNMAP of the CQ's region
            try {
                Command.flush(1).cid(1).writeTo(f.host.memory(), sq);
            } catch (io.javadevices.pci.GuestMemoryException e) {
                throw new AssertionError(e);
            }
            f.host.mmioWrite32(0, 0x1008, 1);
            long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
            while ((f.driver.readReg32(0x1C) & 2) == 0 && System.nanoTime() < deadline) {
                Thread.onSpinWait();
            }
            assertEquals(2, f.driver.readReg32(0x1C) & 2, "CSTS.CFS");
            f.driver.bringUp(1, 16, true);
            assertEquals(0, f.driver.readReg32(0x1C) & 2);
            assertTrue(f.driver.ioQueue(1).execute(Command.flush(1)).ok());
        }
    }
}
