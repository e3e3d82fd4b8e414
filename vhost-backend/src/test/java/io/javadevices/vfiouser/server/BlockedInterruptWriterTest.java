package io.javadevices.vfiouser.server;

import io.javadevices.pci.Bar;
import io.javadevices.pci.ConfigSpace;
import io.javadevices.pci.DeviceContext;
import io.javadevices.pci.MmioHandler;
import io.javadevices.pci.PciDevice;
import io.javadevices.vfiouser.client.HostileFds;
import io.javadevices.vfiouser.client.TestClient;
import io.javadevices.vfiouser.client.TestClient.EventFd;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * A client shares the open file description of every eventfd it hands over, so after SET_IRQS it can
 * clear O_NONBLOCK again and fill the counter to its maximum: a device worker signalling that vector
 * then blocks inside write(2). The server cannot prevent that without a syscall per interrupt, but it
 * must never wait on such a worker: when the vector is disabled, replaced or reset, or the client
 * disconnects, the server drains the eventfd, which wakes the worker, and then serves the next client
 * and closes. The device here models NvmeController: its reset joins its worker thread, so a worker
 * stuck in write(2) would hang the session's teardown. Every test runs under a preemptive timeout
 * because the failure it guards against is a hang.
 */
class BlockedInterruptWriterTest {
    private static final Duration LIMIT = Duration.ofSeconds(8);

    @TempDir
    Path dir;

    /** Two MSI-X vectors; a worker thread signals one of them; reset() joins the worker. */
    static final class WorkerDevice implements PciDevice {
        final ConfigSpace config;
        final DeviceContext context;
        private Thread worker;

        WorkerDevice(DeviceContext context) {
            this.context = context;
            config = ConfigSpace.builder().vendorId(0x1234).deviceId(0x5679).classCode(0xFF, 0, 0)
                    .bar(Bar.memory32(0, 4096, MmioHandler.ZERO)).bar(Bar.memory32(2, 4096, MmioHandler.ZERO))
                    .msix(2, 2, 0, 2, 0x800).build();
        }

        /** Starts the worker: one MSI-X signal of {@code vector}, as a queue worker posts a completion. */
        synchronized Thread signalOnWorker(int vector) {
            worker = Thread.ofPlatform().daemon().name("device-worker").start(() -> context.interrupts().signalMsix(vector));
            return worker;
        }

        @Override
        public ConfigSpace config() {
            return config;
        }

        /** Like NvmeController: a reset stops and joins the workers before it returns. */
        @Override
        public synchronized void reset() {
            if (worker != null) {
                boolean interrupted = false;
                while (worker.isAlive()) {
                    try {
                        worker.join();
                    } catch (InterruptedException e) {
                        interrupted = true;
                    }
                }
                if (interrupted) {
                    Thread.currentThread().interrupt();
                }
                worker = null;
            }
            config.reset();
        }

        @Override
        public void close() {
            reset();
        }
    }

    private WorkerDevice device;

    private VfioUserServer start() throws Exception {
        VfioUserServer server = VfioUserServer.builder().socket(dir.resolve("irq.sock"))
                .device(context -> device = new WorkerDevice(context)).build();
        server.start();
        return server;
    }

    private static TestClient client(VfioUserServer server) throws Exception {
        TestClient c = TestClient.connect(server.socketPath()).timeout(2000);
        c.version();
        return c;
    }

    private static void assertAnswers(TestClient c) throws Exception {
        assertEquals(0x1234, c.readLong(REGION_CONFIG, 0, 2), "the session answers the next message");
    }

    /**
     * Hands {@code eventfd} over for MSI-X vector 0, proves the vector works, then saturates the eventfd
     * the hostile way and starts a worker signalling vector 0; returns the worker once it is proven
     * blocked: still running after 300 ms, inside the interrupt write.
     */
    private Thread blockedWorker(VfioUserServer server, TestClient c, EventFd eventfd) throws Throwable {
        assertFalse(c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_MSIX, 0, 1, eventfd.fd).isError());
        server.interruptsForTest().signalMsix(0);
        assertEquals(1, eventfd.await(2000), "the vector is assigned and signals");
        HostileFds.makeBlockingAndSaturate(eventfd.fd);
        Thread worker = device.signalOnWorker(0);
        // Blocking is the absence of progress: only a bounded wait can show it.
        worker.join(300);
        assertTrue(worker.isAlive(), "the worker's interrupt write blocks on the saturated eventfd");
        assertTrue(Arrays.stream(worker.getStackTrace()).anyMatch(f -> f.getMethodName().equals("writeNoErrno")),
                "the worker is inside the eventfd write: " + Arrays.toString(worker.getStackTrace()));
        return worker;
    }

    private static void assertReturns(Thread worker, String after) throws InterruptedException {
        worker.join(2000);
        assertFalse(worker.isAlive(), "the worker's blocked interrupt write returns after " + after);
    }

    /** A new client is served, and close() returns (the preemptive timeout bounds both). */
    private static void assertServesAnotherClientAndCloses(VfioUserServer server) throws Exception {
        server.awaitNoClient(Duration.ofSeconds(3));
        try (TestClient next = client(server)) {
            assertAnswers(next);
        }
        server.close();
        assertFalse(server.isServing());
    }

    @Test
    void aWorkerBlockedOnASaturatedEventfdIsReleasedWhenTheClientDisconnects() {
        assertTimeoutPreemptively(LIMIT, () -> {
            VfioUserServer server = start();
            try (EventFd eventfd = new EventFd()) {
                Thread worker;
                try (TestClient c = client(server)) {
                    worker = blockedWorker(server, c, eventfd);
                }
                // The session's teardown resets the device, which joins the worker: without the drain
                // it would wait forever and no other client would be served.
                assertReturns(worker, "the client disconnected");
                assertServesAnotherClientAndCloses(server);
            }
        });
    }

    @Test
    void aWorkerBlockedOnASaturatedEventfdIsReleasedWhenTheClientDisablesMsix() {
        assertTimeoutPreemptively(LIMIT, () -> {
            VfioUserServer server = start();
            try (EventFd eventfd = new EventFd(); TestClient c = client(server)) {
                Thread worker = blockedWorker(server, c, eventfd);
                assertFalse(c.setIrqs(IRQ_SET_DATA_NONE | IRQ_SET_ACTION_TRIGGER, IRQ_MSIX, 0, 0).isError());
                assertReturns(worker, "SET_IRQS DATA_NONE count 0");
                assertFalse(server.interruptsForTest().isMsixVectorUsable(0));
                assertAnswers(c);
            }
            assertServesAnotherClientAndCloses(server);
        });
    }

    @Test
    void aWorkerBlockedOnASaturatedEventfdIsReleasedWhenTheClientReplacesItsEventfd() {
        assertTimeoutPreemptively(LIMIT, () -> {
            VfioUserServer server = start();
            try (EventFd eventfd = new EventFd(); EventFd replacement = new EventFd(); TestClient c = client(server)) {
                Thread worker = blockedWorker(server, c, eventfd);
                assertFalse(c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_MSIX, 0, 1, replacement.fd).isError());
                assertReturns(worker, "SET_IRQS assigned a new eventfd to the vector");
                server.interruptsForTest().signalMsix(0);
                assertEquals(1, replacement.await(2000), "the vector signals its new eventfd");
                assertAnswers(c);
            }
            assertServesAnotherClientAndCloses(server);
        });
    }

    /**
     * The drains are for hostile eventfds only: QEMU re-points a vector's eventfd on every MSI-X mask
     * and unmask, and delivers what is still pending on the old one, so a replaced or de-assigned
     * honest eventfd keeps its count.
     */
    @Test
    void anInterruptPendingOnAnHonestEventfdSurvivesItsReplacementAndItsDeassignment() {
        assertTimeoutPreemptively(LIMIT, () -> {
            VfioUserServer server = start();
            try (EventFd first = new EventFd(); EventFd second = new EventFd(); TestClient c = client(server)) {
                assertFalse(c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_MSIX, 0, 1, first.fd).isError());
                server.interruptsForTest().signalMsix(0);
                assertFalse(c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_MSIX, 0, 1, second.fd).isError());
                server.interruptsForTest().signalMsix(0);
                assertFalse(c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_MSIX, 0, 1).isError());
                assertEquals(1, first.await(0), "the interrupt pending when the eventfd was replaced");
                assertEquals(1, second.await(0), "the interrupt pending when the vector was de-assigned");
                assertEquals(0L, counter(server, "irq.fds.reblocked"));
            }
            assertServesAnotherClientAndCloses(server);
        });
    }

    // ===================== a client thread of its own keeps re-saturating the eventfd after each drain

    /** Four client threads blocked writing the maximum value beside the worker: all wait on the counter. */
    private static HostileFds.Resaturator resaturator(EventFd eventfd) {
        return new HostileFds.Resaturator(eventfd.fd, 4);
    }

    @Test
    void aWorkerIsReleasedWhenTheClientDisconnectsAlthoughClientThreadsKeepResaturatingTheEventfd() {
        assertTimeoutPreemptively(LIMIT, () -> {
            VfioUserServer server = start();
            try (EventFd eventfd = new EventFd()) {
                TestClient c = client(server);
                Thread worker = blockedWorker(server, c, eventfd);
                try (HostileFds.Resaturator hostile = resaturator(eventfd)) {
                    c.close();
                    // A single drain mostly loses the counter to the client's threads: the
                    // reset drains until the worker is through, so the teardown completes.
                    assertReturns(worker, "the client disconnected");
                    server.awaitNoClient(Duration.ofSeconds(3));
                }
                assertTrue(counter(server, "irq.fds.reblocked") >= 1, "the hostile eventfd is counted");
                assertServesAnotherClientAndCloses(server);
            }
        });
    }

    @Test
    void aWorkerIsReleasedByTheTeardownAfterADisableAlthoughClientThreadsKeepResaturatingTheEventfd() {
        assertTimeoutPreemptively(LIMIT, () -> {
            VfioUserServer server = start();
            try (EventFd eventfd = new EventFd()) {
                TestClient c = client(server);
                Thread worker = blockedWorker(server, c, eventfd);
                try (HostileFds.Resaturator hostile = resaturator(eventfd)) {
                    // The eventfd leaves the vector: the worker may stay blocked on it (the client's
                    // threads may win the drained counter), so the server keeps it for the reset.
                    assertFalse(c.setIrqs(IRQ_SET_DATA_NONE | IRQ_SET_ACTION_TRIGGER, IRQ_MSIX, 0, 0).isError());
                    assertAnswers(c);
                    c.close();
                    assertReturns(worker, "the client disabled MSI-X and disconnected");
                    server.awaitNoClient(Duration.ofSeconds(3));
                }
                assertServesAnotherClientAndCloses(server);
            }
        });
    }

    @Test
    void aDeviceResetReturnsAlthoughClientThreadsKeepResaturatingTheEventfd() {
        assertTimeoutPreemptively(LIMIT, () -> {
            VfioUserServer server = start();
            try (EventFd eventfd = new EventFd(); TestClient c = client(server)) {
                Thread worker = blockedWorker(server, c, eventfd);
                try (HostileFds.Resaturator hostile = resaturator(eventfd)) {
                    assertFalse(c.request(CMD_DEVICE_RESET, new byte[0]).isError());
                    assertFalse(worker.isAlive(), "the reset returned, so it joined the released worker");
                    assertAnswers(c);
                }
            }
            assertServesAnotherClientAndCloses(server);
        });
    }

    private static long counter(VfioUserServer server, String name) {
        Long v = server.resources().get(name);
        return v == null ? -1 : v;
    }

    @Test
    void aDeviceResetDoesNotWaitForAWorkerBlockedOnASaturatedEventfd() {
        assertTimeoutPreemptively(LIMIT, () -> {
            VfioUserServer server = start();
            try (EventFd eventfd = new EventFd(); TestClient c = client(server)) {
                Thread worker = blockedWorker(server, c, eventfd);
                // The reset joins the worker (device.reset()); it must answer, not hang the session.
                assertFalse(c.request(CMD_DEVICE_RESET, new byte[0]).isError());
                assertFalse(worker.isAlive(), "the reset returned, so it joined the released worker");
                assertAnswers(c);
            }
            assertServesAnotherClientAndCloses(server);
        });
    }
}
