package io.javadevices.vfiouser.server;

import io.javadevices.pci.Bar;
import io.javadevices.pci.ConfigSpace;
import io.javadevices.pci.DeviceContext;
import io.javadevices.pci.InterruptSink;
import io.javadevices.pci.MmioHandler;
import io.javadevices.pci.PciDevice;
import io.javadevices.vfiouser.client.HostileFds;
import io.javadevices.vfiouser.client.TestClient;
import io.javadevices.vfiouser.client.TestClient.EventFd;
import io.javadevices.vfiouser.client.TestClient.Reply;
import io.javadevices.vfiouser.sys.LibC;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.*;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Interrupt fds from a hostile client (issue "trust at both boundaries"): SET_IRQS accepts only
 * eventfds, and no interrupt write (SET_IRQS trigger, MSI-X signal, INTx assert) can block, even on an
 * eventfd whose counter the client pre-loaded to its maximum. Every test runs under a preemptive
 * timeout because the failure it guards against is a hang (of the session, a worker, or close()).
 */
class HostileInterruptFdsTest {
    private static final int EINVAL = 22;
    private static final Duration LIMIT = Duration.ofSeconds(8);

    @TempDir
    Path dir;

    /** INTx (pin A; BAR0 offset 0 is the line level: write 1 asserts, 0 deasserts) and 2 MSI-X vectors. */
    static final class IrqDevice implements PciDevice {
        final ConfigSpace config;

        IrqDevice(DeviceContext context) {
            MmioHandler line = new MmioHandler() {
                @Override
                public long read(long offset, int size) {
                    return 0;
                }

                @Override
                public void write(long offset, int size, long value) {
                    context.interrupts().setIntx(value != 0);
                }
            };
            config = ConfigSpace.builder().vendorId(0x1234).deviceId(0x5678).classCode(0xFF, 0, 0).interruptPin(1)
                    .bar(Bar.memory32(0, 4096, line)).bar(Bar.memory32(2, 4096, MmioHandler.ZERO))
                    .msix(2, 2, 0, 2, 0x800).build();
        }

        @Override
        public ConfigSpace config() {
            return config;
        }

        @Override
        public void reset() {
            config.reset();
        }

        @Override
        public void close() {
        }
    }

    private VfioUserServer start() throws Exception {
        VfioUserServer server = VfioUserServer.builder().socket(dir.resolve("irq.sock")).device(IrqDevice::new).build();
        server.start();
        return server;
    }

    private static TestClient client(VfioUserServer server) throws Exception {
        TestClient c = TestClient.connect(server.socketPath()).timeout(2000);
        c.version();
        return c;
    }

    /** The session still answers: a config-space read of the vendor id. */
    private static void assertAnswers(TestClient c) throws Exception {
        assertEquals(0x1234, c.readLong(REGION_CONFIG, 0, 2), "the session answers the next message");
    }

    /** A new client is served, and close() returns (the test's preemptive timeout bounds both). */
    private static void assertServesAnotherClientAndCloses(VfioUserServer server) throws Exception {
        server.awaitNoClient(Duration.ofSeconds(3));
        try (TestClient next = client(server)) {
            assertAnswers(next);
        }
        server.close();
        assertFalse(server.isServing());
    }

    /** Runs {@code action} on a separate "worker" thread; fails if it has not returned within 2 s. */
    private static void assertReturnsOnWorker(String what, Runnable action) throws Exception {
        Thread worker = Thread.ofPlatform().daemon().name("test-worker").start(action);
        worker.join(2000);
        assertFalse(worker.isAlive(), what + " blocked the worker thread");
    }

    private static long counter(VfioUserServer server, String name) {
        Long v = server.resources().get(name);
        return v == null ? -1 : v;
    }

    // ================================================================== item 1: only eventfds

    @Test
    void aFullPipeAsMsixVectorCannotBlockTheSessionAndIsRefused() {
        assertTimeoutPreemptively(LIMIT, () -> {
            VfioUserServer server = start();
            int[] pipe = HostileFds.pipe();
            try (TestClient c = client(server)) {
                int full = HostileFds.fullPipeWriteEnd(pipe);
                Reply assigned = c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_MSIX, 0, 1, full);
                // Checked before the refusal: on a server that accepted the pipe, these hang.
                assertFalse(c.setIrqs(IRQ_SET_DATA_NONE | IRQ_SET_ACTION_TRIGGER, IRQ_MSIX, 0, 1).isError());
                assertAnswers(c);
                InterruptSink sink = server.interruptsForTest();
                assertReturnsOnWorker("signalMsix", () -> {
                    for (int i = 0; i < 3; i++) {
                        sink.signalMsix(0);
                    }
                });
                assertTrue(assigned.isError(), "a pipe is not an eventfd");
                assertEquals(EINVAL, assigned.error());
                assertFalse(sink.isMsixVectorUsable(0));
                assertEquals(0L, server.resources().get("irq.fds"));
                assertEquals(1L, counter(server, "irq.fds.refused"));
            } finally {
                LibC.closeQuietly(pipe[0]);
                LibC.closeQuietly(pipe[1]);
            }
            assertServesAnotherClientAndCloses(server);
        });
    }

    @Test
    void pipeSocketAndRegularFileAreRefusedForEveryInterruptFd() {
        assertTimeoutPreemptively(LIMIT, () -> {
            VfioUserServer server = start();
            int[] pipe = HostileFds.pipe();
            int[] sockets = HostileFds.socketPair();
            int file = HostileFds.regularFile(dir.resolve("not-an-eventfd"));
            int[] wrong = {pipe[0], pipe[1], sockets[0], file};
            int[][] targets = { // flags, index
                    {IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_MSIX},
                    {IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_INTX},
                    {IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_UNMASK, IRQ_INTX}, // the resample fd
                    {IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_ERR},
                    {IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_REQ}};
            try (TestClient c = client(server); EventFd good = new EventFd()) {
                for (int fd : wrong) {
                    for (int[] t : targets) {
                        Reply r = c.setIrqs(t[0], t[1], 0, 1, fd);
                        String what = "fd " + fd + " for index " + t[1] + " flags 0x" + Integer.toHexString(t[0]);
                        assertTrue(r.isError(), what + " accepted");
                        assertEquals(EINVAL, r.error(), what);
                        assertAnswers(c);
                    }
                }
                // All or nothing: one bad fd among good ones assigns no vector.
                Reply mixed = c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_MSIX, 0, 2, good.fd, sockets[0]);
                assertEquals(EINVAL, mixed.error());
                assertFalse(server.interruptsForTest().isMsixVectorUsable(0));
                assertEquals(0L, server.resources().get("irq.fds"));
                assertEquals((long) wrong.length * targets.length + 1, counter(server, "irq.fds.refused"));
                // A real eventfd is still accepted afterwards and signalled.
                assertFalse(c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_MSIX, 0, 1, good.fd).isError());
                server.interruptsForTest().signalMsix(0);
                assertEquals(1, good.await(2000));
            } finally {
                for (int fd : new int[] {pipe[0], pipe[1], sockets[0], sockets[1], file}) {
                    LibC.closeQuietly(fd);
                }
            }
            assertServesAnotherClientAndCloses(server);
        });
    }

    // ================================================================== item 1: writes never block

    @Test
    void eventfdAtItsMaximumDoesNotBlockATriggerOrAnMsixSignal() {
        assertTimeoutPreemptively(LIMIT, () -> {
            VfioUserServer server = start();
            int msix = HostileFds.saturatedBlockingEventfd(0);
            int err = HostileFds.saturatedBlockingEventfd(0);
            try (TestClient c = client(server); Arena arena = Arena.ofConfined()) {
                assertFalse(c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_MSIX, 0, 1, msix).isError());
                assertFalse(c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_ERR, 0, 1, err).isError());
                // SET_IRQS trigger from the session thread, DATA_NONE and DATA_BOOL.
                assertFalse(c.setIrqs(IRQ_SET_DATA_NONE | IRQ_SET_ACTION_TRIGGER, IRQ_MSIX, 0, 1).isError());
                assertFalse(c.setIrqs(IRQ_SET_DATA_NONE | IRQ_SET_ACTION_TRIGGER, IRQ_ERR, 0, 1).isError());
                byte[] bool = TestClient.le(21).putInt(21).putInt(IRQ_SET_DATA_BOOL | IRQ_SET_ACTION_TRIGGER)
                        .putInt(IRQ_MSIX).putInt(0).putInt(1).put((byte) 1).array();
                assertFalse(c.request(CMD_DEVICE_SET_IRQS, bool).isError());
                assertAnswers(c);
                // A device worker's MSI-X signal returns.
                InterruptSink sink = server.interruptsForTest();
                assertReturnsOnWorker("signalMsix", () -> sink.signalMsix(0));
                assertEquals(4L, counter(server, "irq.saturated"), "each write found the interrupt pending");
                // The client's eventfd was made non-blocking; the interrupt is pending, not lost.
                assertTrue(HostileFds.isNonBlocking(msix));
                MemorySegment value = arena.allocate(JAVA_LONG);
                LibC.read(msix, value, 8);
                assertEquals(HostileFds.EVENTFD_MAX, value.get(JAVA_LONG, 0));
                // Drained, the same vector signals normally again.
                sink.signalMsix(0);
                LibC.read(msix, value, 8);
                assertEquals(1, value.get(JAVA_LONG, 0));
            } finally {
                LibC.closeQuietly(msix);
                LibC.closeQuietly(err);
            }
            assertServesAnotherClientAndCloses(server);
        });
    }

    @Test
    void eventfdAtItsMaximumDoesNotBlockAnIntxAssertAndNoIntxLockIsHeldAcrossTheWrite() {
        assertTimeoutPreemptively(LIMIT, () -> {
            VfioUserServer server = start();
            int intx = HostileFds.saturatedBlockingEventfd(0);
            try (TestClient c = client(server)) {
                assertFalse(c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_INTX, 0, 1, intx).isError());
                c.writeLong(0, 0, 4, 1); // assert from the session thread (a BAR write)
                c.writeLong(0, 0, 4, 0);
                assertFalse(c.setIrqs(IRQ_SET_DATA_NONE | IRQ_SET_ACTION_UNMASK, IRQ_INTX, 0, 1).isError());
                // A device worker asserts: it returns, and the INTx locks are free for the session.
                InterruptSink sink = server.interruptsForTest();
                assertReturnsOnWorker("setIntx", () -> sink.setIntx(true));
                assertFalse(c.setIrqs(IRQ_SET_DATA_NONE | IRQ_SET_ACTION_UNMASK, IRQ_INTX, 0, 1).isError());
                assertFalse(c.setIrqs(IRQ_SET_DATA_NONE | IRQ_SET_ACTION_MASK, IRQ_INTX, 0, 1).isError());
                assertAnswers(c);
                assertEquals(3L, counter(server, "irq.saturated"), "assert, worker assert, re-fire on unmask");
            } finally {
                LibC.closeQuietly(intx);
            }
            assertServesAnotherClientAndCloses(server);
        });
    }

    // ================================================================== item 2: the resample fd never spins

    /** The session threads alive now (a hung session of an earlier server may still carry the same name). */
    private static Set<Thread> sessionThreads() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().startsWith("vfio-user-client ")).collect(Collectors.toSet());
    }

    /** CPU time the session thread uses while the client sends nothing for {@code idleMillis}. */
    private static long idleSessionCpuMillis(Set<Thread> earlier, long idleMillis) throws Exception {
        ThreadMXBean threads = ManagementFactory.getThreadMXBean();
        assertTrue(threads.isThreadCpuTimeSupported(), "thread CPU time is needed for this test");
        Set<Thread> started = sessionThreads();
        started.removeAll(earlier);
        assertEquals(1, started.size(), "one new session thread");
        Thread session = started.iterator().next();
        long before = threads.getThreadCpuTime(session.threadId());
        // The quantity under test is what an idle session does over time: there is no event to await.
        TimeUnit.MILLISECONDS.sleep(idleMillis);
        return TimeUnit.NANOSECONDS.toMillis(threads.getThreadCpuTime(session.threadId()) - before);
    }

    @Test
    void aHungUpPipeAsResampleFdIsRefusedAndTheIdleSessionDoesNotSpin() {
        assertTimeoutPreemptively(LIMIT, () -> {
            VfioUserServer server = start();
            int[] pipe = HostileFds.pipe();
            Set<Thread> earlier = sessionThreads();
            try (TestClient c = client(server); EventFd trigger = new EventFd()) {
                assertFalse(c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_INTX, 0, 1, trigger.fd).isError());
                LibC.closeQuietly(pipe[1]); // the writer is gone: poll reports POLLHUP on the read end forever
                Reply r = c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_UNMASK, IRQ_INTX, 0, 1, pipe[0]);
                assertAnswers(c);
                long cpu = idleSessionCpuMillis(earlier, 500);
                assertTrue(cpu < 100, "idle session thread used " + cpu + " ms of CPU in 500 ms");
                assertEquals(EINVAL, r.error(), "a pipe is not an eventfd");
            } finally {
                LibC.closeQuietly(pipe[0]);
            }
            assertServesAnotherClientAndCloses(server);
        });
    }

    @Test
    void aPreloadedSemaphoreEventfdAsResampleFdIsRefusedAndTheIdleSessionDoesNotSpin() {
        assertTimeoutPreemptively(LIMIT, () -> {
            VfioUserServer server = start();
            // A semaphore eventfd reads 1 per read(2): pre-loaded, it stays readable for 2^64 reads.
            int semaphore = HostileFds.saturatedBlockingEventfd(HostileFds.EFD_SEMAPHORE);
            Set<Thread> earlier = sessionThreads();
            try (TestClient c = client(server); EventFd trigger = new EventFd()) {
                assertFalse(c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_INTX, 0, 1, trigger.fd).isError());
                Reply r = c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_UNMASK, IRQ_INTX, 0, 1, semaphore);
                assertAnswers(c);
                long cpu = idleSessionCpuMillis(earlier, 500);
                assertTrue(cpu < 100, "idle session thread used " + cpu + " ms of CPU in 500 ms");
                assertEquals(EINVAL, r.error(), "semaphore-mode eventfds are refused");
            } finally {
                LibC.closeQuietly(semaphore);
            }
            assertServesAnotherClientAndCloses(server);
        });
    }
}
