package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.nvme.driver.LinuxLikeDriver;
import io.javadevices.pci.ConfigSpace;
import io.javadevices.pci.GuestMemoryException;
import io.javadevices.pci.testkit.TestHost;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Resets and queue deletions while a worker is stuck in a long backend call (a {@link GatedBackend}
 * the test releases): the register write returns at once, CSTS.RDY (or the Delete I/O SQ completion)
 * waits until the worker is gone, the late command posts nothing, and a worker stuck past
 * stop-timeout-ms makes the controller report CSTS.CFS instead of a false RDY = 0.
 */
class StuckWorkerTest {
    private static final int CC = 0x14, CSTS = 0x1C, RDY = 1, CFS = 2;

    private TestHost host;
    private NvmeController controller;
    private LinuxLikeDriver driver;
    private GatedBackend gate;

    private void start(String stopTimeoutMillis) {
        host = TestHost.heap(64L << 20);
        Map<String, String> o = new HashMap<>(Map.of("queues", "2", "namespaces", "ram:16M"));
        if (stopTimeoutMillis != null) {
            o.put("stop-timeout-ms", stopTimeoutMillis);
        }
        controller = host.attach(ctx -> new NvmeController(NvmeOptions.parse(o), ctx,
                spec -> gate = new GatedBackend(spec.open())));
        driver = new LinuxLikeDriver(host);
    }

    @AfterEach
    void close() {
        if (gate != null) {
            gate.release();
        }
        if (host != null) {
            host.close();
        }
    }

    /** Runs {@code action} (a register write, a reset) and asserts it returns within a second. */
    private static void returnsAtOnce(String what, Runnable action) throws Exception {
        CompletableFuture<Void> done = CompletableFuture.runAsync(action, r -> Thread.ofPlatform().daemon().start(r));
        try {
            done.get(1, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            fail(what + " blocked while a worker was stuck in its backend");
        }
    }

    private static void await(String what, BooleanSupplier condition) {
        long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                fail("timed out waiting for " + what);
            }
            Thread.onSpinWait();
        }
    }

    private int csts() {
        return driver.readReg32(CSTS);
    }

    private byte[] bytes(long address, int length) {
        byte[] b = new byte[length];
        try {
            host.memory().read(address, b, 0, length);
        } catch (GuestMemoryException e) {
            throw new AssertionError(e);
        }
        return b;
    }

    private void disableAtOnce() throws Exception {
        int cc = driver.readReg32(CC);
        returnsAtOnce("CC.EN = 0", () -> driver.writeReg32(CC, cc & ~1));
    }

    /** Brings the controller up with one I/O queue and leaves a Flush stuck in the backend. */
    private HostQueue stuckFlush() throws Exception {
        driver.bringUp(1, 16, false);
        HostQueue q = driver.ioQueue(1);
        gate.arm(false);
        q.submit(Command.flush(1));
        gate.awaitEntered();
        return q;
    }

    @Test
    void disableReturnsAtOnceAndReadyFallsOnlyOnceTheWorkerLeftWithoutDma() throws Exception {
        start(null);
        driver.bringUp(1, 16, false);
        HostQueue q = driver.ioQueue(1);
        long pages = host.allocatePages(3), first = pages, second = pages + 2 * 4096;
        host.memory().fill(pages, 3 * 4096, (byte) 0x5A);
        assertTrue(q.execute(Command.write(1, 0, 16, first, second)).ok());
        host.memory().fill(pages, 3 * 4096, (byte) 0xEE);
        gate.arm(true);
        q.submit(Command.read(1, 0, 16, first, second)); // two pages, two backend slices
        gate.awaitEntered();
        byte[] cqBefore = bytes(q.cqBase, 16 * 16);

        disableAtOnce();
        assertEquals(RDY, csts() & (RDY | CFS), "RDY stays 1 while the worker can still DMA");
        gate.release();
        await("CSTS.RDY = 0", () -> (csts() & RDY) == 0);

        assertArrayEquals(cqBefore, bytes(q.cqBase, 16 * 16), "no CQE for the late read in the old CQ");
        byte[] untouched = new byte[4096];
        java.util.Arrays.fill(untouched, (byte) 0xEE);
        assertArrayEquals(untouched, bytes(second, 4096), "no data after the stop into the read's second page");
        assertEquals(0, csts() & CFS);

        driver.bringUp(1, 16, true);
        assertTrue(driver.ioQueue(1).execute(Command.read(1, 0, 8, first, 0)).ok());
    }

    @Test
    void workerStuckPastTheBoundReportsFatalStatusNotReadyZero() throws Exception {
        start("200");
        HostQueue q = stuckFlush();
        byte[] cqBefore = bytes(q.cqBase, 16 * 16);
        disableAtOnce();
        await("CSTS.CFS", () -> (csts() & CFS) != 0);
        assertEquals(RDY, csts() & RDY, "no RDY = 0 while the worker is stuck");

        gate.release();
        await("CSTS.RDY = 0 once the worker returned", () -> (csts() & (RDY | CFS)) == 0);
        assertArrayEquals(cqBefore, bytes(q.cqBase, 16 * 16), "the late flush posted nothing");
        driver.bringUp(1, 16, true);
        assertTrue(driver.ioQueue(1).execute(Command.flush(1)).ok());
    }

    @Test
    void enableWrittenWhileTheOldWorkersRunIsDeferred() throws Exception {
        start(null);
        HostQueue q = stuckFlush();
        byte[] cqBefore = bytes(q.cqBase, 16 * 16);
        long asq = driver.adminQueue().sqBase, acq = driver.adminQueue().cqBase;
        int cc = driver.readReg32(CC);
        disableAtOnce();
        host.memory().fill(asq, 4096, (byte) 0);
        host.memory().fill(acq, 4096, (byte) 0);
        returnsAtOnce("CC.EN = 1", () -> driver.writeReg32(CC, cc | 1));
        assertEquals(1, controller.statistics().get(NvmeStatistics.IO_QUEUES), "the old queues are not torn down yet");

        gate.release();
        await("the deferred enable", () -> controller.statistics().get(NvmeStatistics.IO_QUEUES) == 0 && (csts() & RDY) != 0);
        assertEquals(0, csts() & CFS);
        assertArrayEquals(cqBefore, bytes(q.cqBase, 16 * 16), "the late flush posted nothing");
        // The new admin queue serves: Identify Controller at slot 0.
        long data = host.allocatePages(1);
        Command.identify(1, 0, data).cid(7).writeTo(host.memory(), asq);
        host.mmioWrite32(0, 0x1000, 1);
        await("the Identify completion", () -> {
            try {
                return (host.memory().loadIntAcquire(acq + 12) & 0x1_FFFF) == (1 << 16 | 7);
            } catch (GuestMemoryException e) {
                throw new AssertionError(e);
            }
        });
        assertEquals(0, host.memory().loadIntAcquire(acq + 12) >>> 17, "Identify succeeded");
    }

    /**
     * A device reset (or FLR) that returns before its old workers ended (CFS past the bound) leaves the reset
     * under way; a CC.EN = 1 the host writes then must be deferred to its completion, not dropped.
     */
    @Test
    void enableWrittenAfterADeviceResetThatIsStillUnderWayIsDeferred() throws Exception {
        start("200");
        stuckFlush();
        long asq = driver.adminQueue().sqBase, acq = driver.adminQueue().cqBase;
        controller.reset(); // returns past stop-timeout-ms with CFS set, the worker still stuck
        assertEquals(CFS, csts() & CFS, "the stuck worker is reported");
        host.configWrite(ConfigSpace.COMMAND, 2, 0x6); // memory decoding and bus mastering again
        host.memory().fill(asq, 4096, (byte) 0);
        host.memory().fill(acq, 4096, (byte) 0);
        driver.writeReg32(0x24, 15 << 16 | 15);
        driver.writeReg64(0x28, asq);
        driver.writeReg64(0x30, acq);
        int cc = 6 << 16 | 4 << 20;
        driver.writeReg32(CC, cc);
        returnsAtOnce("CC.EN = 1", () -> driver.writeReg32(CC, cc | 1));

        gate.release();
        await("the deferred enable", () -> (csts() & (RDY | CFS)) == RDY);
        long data = host.allocatePages(1);
        Command.identify(1, 0, data).cid(7).writeTo(host.memory(), asq);
        host.mmioWrite32(0, 0x1000, 1);
        await("the Identify completion", () -> {
            try {
                return (host.memory().loadIntAcquire(acq + 12) & 0x1_FFFF) == (1 << 16 | 7);
            } catch (GuestMemoryException e) {
                throw new AssertionError(e);
            }
        });
    }

    /** A device reset after a shutdown (a guest reboot): the workers are gone already, the reset completes at once, disabled. */
    @Test
    void deviceResetAfterAShutdownLeavesTheControllerDisabled() throws Exception {
        start(null);
        driver.bringUp(1, 16, false);
        driver.shutdown();
        controller.reset();
        assertEquals(0, driver.readReg32(CC), "CC after reset");
        assertEquals(0, csts(), "CSTS after reset: not ready, no shutdown status");
        assertEquals(0, controller.statistics().get(NvmeStatistics.IO_QUEUES));
    }

    @Test
    void deleteSqCompletesOnlyOnceItsWorkerStopped() throws Exception {
        start(null);
        HostQueue q = stuckFlush();
        byte[] cqBefore = bytes(q.cqBase, 16 * 16);
        HostQueue admin = driver.adminQueue();
        int cid = admin.submit(Command.deleteSq(1));
        assertTrue(admin.pollFor(Duration.ofMillis(200)).isEmpty(), "Delete I/O SQ done while its worker is stuck");

        gate.release();
        List<Completion> done = admin.awaitCompletions(1, Duration.ofSeconds(5));
        assertEquals(cid, done.get(0).cid());
        assertTrue(done.get(0).ok(), done.get(0).toString());
        assertArrayEquals(cqBefore, bytes(q.cqBase, 16 * 16), "the deleted SQ's late flush posted nothing");
        assertTrue(driver.admin(Command.deleteCq(1)).ok());
        assertEquals(0, csts() & CFS);
    }

    @Test
    void deleteSqWithAWorkerStuckPastTheBoundReportsFatalStatus() throws Exception {
        start("200");
        HostQueue q = stuckFlush();
        byte[] cqBefore = bytes(q.cqBase, 16 * 16);
        driver.adminQueue().submit(Command.deleteSq(1));
        await("CSTS.CFS", () -> (csts() & CFS) != 0);
        assertTrue(driver.adminQueue().reap().isEmpty(), "no Delete I/O SQ completion while the worker is stuck");
        gate.release();
        assertTrue(driver.adminQueue().awaitCompletions(1, Duration.ofSeconds(5)).get(0).ok());
        assertArrayEquals(cqBefore, bytes(q.cqBase, 16 * 16));
    }

    @Test
    void functionLevelResetWaitsForTheStuckWorkerWithoutBlockingTheConfigWrite() throws Exception {
        start(null);
        HostQueue q = stuckFlush();
        byte[] cqBefore = bytes(q.cqBase, 16 * 16);
        int devctl = controller.config().pciExpressCapabilityOffset() + 8;
        returnsAtOnce("FLR", () -> host.configWrite(devctl, 2, 0x8000));
        assertEquals(RDY, csts() & (RDY | CFS), "RDY stays 1 while the worker can still DMA");
        gate.release();
        await("CSTS.RDY = 0", () -> (csts() & RDY) == 0);
        assertArrayEquals(cqBefore, bytes(q.cqBase, 16 * 16));
        host.configWrite(ConfigSpace.COMMAND, 2, ConfigSpace.COMMAND_MEMORY | ConfigSpace.COMMAND_BUS_MASTER);
        driver.bringUp(1, 16, true);
        assertTrue(driver.ioQueue(1).execute(Command.flush(1)).ok());
    }

    @Test
    void deviceResetIsBoundedAndReportsFatalStatusWhileTheWorkerIsStuck() throws Exception {
        start("300");
        HostQueue q = stuckFlush();
        byte[] cqBefore = bytes(q.cqBase, 16 * 16);
        CompletableFuture<Void> reset = CompletableFuture.runAsync(controller::reset,
                r -> Thread.ofPlatform().daemon().start(r));
        reset.get(2, TimeUnit.SECONDS); // the bound (300 ms), not the 10 s join of old
        assertEquals(RDY | CFS, csts() & (RDY | CFS), "reset() returned: fatal status, no false RDY = 0");
        gate.release();
        await("the reset completes", () -> (csts() & (RDY | CFS)) == 0);
        assertEquals(0, controller.statistics().get(NvmeStatistics.IO_QUEUES));
        assertArrayEquals(cqBefore, bytes(q.cqBase, 16 * 16));
    }

    @Test
    void outstandingAsyncEventRequestsGetNoCompletionOnReset() throws Exception {
        start(null);
        driver.bringUp(1, 16, false); // leaves one AER outstanding
        long acq = driver.adminQueue().cqBase;
        byte[] before = bytes(acq, 4096);
        driver.disable();
        assertArrayEquals(before, bytes(acq, 4096), "no AER abort CQE DMA'd during the reset");
    }

    @Test
    void busMasterClearedBetweenTwoCommandsOfOneBatchStopsTheSecond() throws Exception {
        start(null);
        driver.bringUp(1, 16, false);
        HostQueue q = driver.ioQueue(1);
        long buf = host.allocatePages(1);
        host.memory().fill(buf, 4096, (byte) 0x11);
        gate.arm(false);
        int flush = q.queue(Command.flush(1));
        int read = q.queue(Command.read(1, 0, 8, buf, 0));
        q.ringSq(); // one doorbell, one batch
        gate.awaitEntered();
        long reads = controller.statistics().get(NvmeStatistics.IO_READS);
        host.configWrite(ConfigSpace.COMMAND, 2, ConfigSpace.COMMAND_MEMORY); // Bus Master Enable off
        gate.release();
        assertTrue(q.pollFor(Duration.ofMillis(200)).isEmpty(), "no CQE without Bus Master Enable");
        assertEquals(reads, controller.statistics().get(NvmeStatistics.IO_READS), "the second command was not fetched");
        assertEquals(0x11111111, host.memory().readInt(buf), "nothing DMA'd into the read buffer");

        host.configWrite(ConfigSpace.COMMAND, 2, ConfigSpace.COMMAND_MEMORY | ConfigSpace.COMMAND_BUS_MASTER);
        List<Completion> done = q.awaitCompletions(2, Duration.ofSeconds(5));
        assertEquals(List.of(flush, read), done.stream().map(Completion::cid).toList());
        assertTrue(done.stream().allMatch(Completion::ok));
        assertEquals(0, host.memory().readInt(buf), "the read ran once Bus Master Enable was set");
    }
}
