package io.javadevices.vfiouser.irq;

import io.javadevices.pci.ConfigSpace;
import io.javadevices.vfiouser.client.TestClient.EventFd;
import io.javadevices.vfiouser.sys.ErrnoException;
import io.javadevices.vfiouser.sys.LibC;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.IRQ_INTX;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.*;

/**
 * How the session thread's poll result for the INTx resample eventfd is handled. An eventfd never
 * hangs up and reports POLLERR only on a counter overflow no client can cause, so the error paths are
 * driven with the revents poll would return; POLLIN is driven with a real eventfd.
 */
class ResampleEventsTest {
    private final Arena arena = Arena.ofConfined();
    private final MemorySegment value = arena.allocate(JAVA_LONG);
    private EventfdInterrupts interrupts;
    private EventFd trigger;
    private EventFd resample;

    @BeforeEach
    void setUp() throws Exception {
        interrupts = new EventfdInterrupts(0);
        interrupts.attach(ConfigSpace.builder().vendorId(0x1234).deviceId(1).interruptPin(1).build());
        trigger = new EventFd();
        resample = new EventFd();
        assertEquals(0, interrupts.assign(IRQ_INTX, 0, 1, new int[] {LibC.dup(trigger.fd)}));
        assertEquals(0, interrupts.setResampleFd(LibC.dup(resample.fd)));
        assertEquals(2, interrupts.clientEventfds());
    }

    @AfterEach
    void tearDown() {
        interrupts.close();
        trigger.close();
        resample.close();
        arena.close();
    }

    @Test
    void pollinConsumesTheCounterAndUnmasks() throws Exception {
        interrupts.setIntx(true);
        assertEquals(1, trigger.await(1000));
        interrupts.setIntx(false);
        interrupts.setIntx(true); // auto-masked: held
        assertEquals(0, trigger.await(50));
        resample.signal();
        interrupts.resampleEvents(LibC.POLLIN);
        assertEquals(1, trigger.await(1000), "the EOI re-fired the still-asserted line");
        ErrnoException drained = assertThrows(ErrnoException.class, () -> LibC.read(resample.fd, value, 8));
        assertEquals(11, drained.errno(), "the resample counter was consumed (EAGAIN)");
        assertEquals(2, interrupts.clientEventfds(), "POLLIN keeps the fd");
        assertEquals(0, interrupts.resampleFailures());
    }

    /**
     * The client shares the resample eventfd's file description: it can clear O_NONBLOCK and consume the
     * counter itself between the session thread's poll (POLLIN) and its read. That read must not block,
     * or the session thread (the only one reading the socket) hangs for good.
     */
    @Test
    void pollinOnACounterTheClientAlreadyConsumedDoesNotBlock() throws Exception {
        int flags = LibC.fcntl(resample.fd, LibC.F_GETFL, 0);
        LibC.fcntl(resample.fd, LibC.F_SETFL, flags & ~LibC.O_NONBLOCK); // the client's shared copy
        Thread session = Thread.ofPlatform().daemon().start(() -> interrupts.resampleEvents(LibC.POLLIN));
        try {
            session.join(2000);
            assertFalse(session.isAlive(), "resampleEvents blocked reading an empty, blocking eventfd");
        } finally {
            resample.signal(); // frees a blocked reader so the test leaves no thread behind
            session.join(1000);
        }
        assertEquals(2, interrupts.clientEventfds(), "POLLIN keeps the fd");
    }

    @Test
    void pollhupDeassignsTheResampleFd() {
        interrupts.resampleEvents(LibC.POLLHUP);
        assertEquals(-1, interrupts.resampleFd(), "a hung-up fd stays hung up: poll would spin on it");
        assertEquals(1, interrupts.clientEventfds());
        assertEquals(1, interrupts.resampleFailures());
        interrupts.resampleEvents((short) 0); // nothing more happens once it is gone
        assertEquals(1, interrupts.resampleFailures());
    }

    @Test
    void pollerrAndPollnvalDeassignToo() throws Exception {
        interrupts.resampleEvents(LibC.POLLERR);
        assertEquals(-1, interrupts.resampleFd());
        assertEquals(0, interrupts.setResampleFd(LibC.dup(resample.fd)));
        interrupts.resampleEvents((short) (LibC.POLLIN | LibC.POLLNVAL));
        assertEquals(-1, interrupts.resampleFd());
        assertEquals(2, interrupts.resampleFailures());
        // INTx itself keeps working through SET_IRQS UNMASK.
        interrupts.setIntx(true);
        assertEquals(1, trigger.await(1000));
    }

    @Test
    void aNonEventfdIsRefusedAndThePreviousResampleFdStays() throws Exception {
        int before = interrupts.resampleFd();
        int memfd = LibC.memfdCreate("not-an-eventfd", LibC.MFD_CLOEXEC);
        assertEquals(22, interrupts.setResampleFd(memfd));
        assertEquals(before, interrupts.resampleFd());
        assertEquals(1, interrupts.refusedFds());
    }
}
