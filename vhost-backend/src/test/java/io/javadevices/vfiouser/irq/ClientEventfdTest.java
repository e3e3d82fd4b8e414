package io.javadevices.vfiouser.irq;

import io.javadevices.pci.ConfigSpace;
import io.javadevices.vfiouser.client.HostileFds;
import io.javadevices.vfiouser.sys.Errno;
import io.javadevices.vfiouser.sys.ErrnoException;
import io.javadevices.vfiouser.sys.LibC;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.IRQ_INTX;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Draining a client's eventfd to wake a writer the client blocked ({@link ClientEventfd#unblockWriters},
 * {@link EventfdInterrupts#drainDuringReset}):
 * it wakes the writer, and it never blocks itself, even on an eventfd the client made blocking again
 * with nothing to drain. Preemptive timeouts, because the failures guarded against are hangs.
 */
class ClientEventfdTest {
    private static final Duration LIMIT = Duration.ofSeconds(5);
    private final Arena arena = Arena.ofShared();
    private final MemorySegment value = arena.allocate(JAVA_LONG);
    private int fd = -1;

    @AfterEach
    void tearDown() {
        LibC.closeQuietly(fd);
        arena.close();
    }

    /** Starts a thread running {@code write} and proves it blocked: still writing after 300 ms. */
    private static Thread blockedWriter(Runnable write) throws InterruptedException {
        Thread writer = Thread.ofPlatform().daemon().name("blocked-writer").start(write);
        // Blocking is the absence of progress: only a bounded wait can show it.
        writer.join(300);
        assertTrue(writer.isAlive(), "the write of 1 blocks on the saturated blocking eventfd");
        return writer;
    }

    private static void writeOne(int eventfd) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment one = a.allocate(JAVA_LONG);
            one.set(JAVA_LONG, 0, 1L);
            LibC.write(eventfd, one, 8);
        } catch (ErrnoException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void theNoWaitReadOfAnEmptyBlockingEventfdFailsWithEagainInsteadOfBlocking() {
        assertTimeoutPreemptively(LIMIT, () -> {
            fd = LibC.eventfd(0, LibC.EFD_CLOEXEC); // blocking, counter 0: a read(2) would wait forever
            ErrnoException e = assertThrows(ErrnoException.class, () -> LibC.readNoWait(fd, value, 8));
            assertEquals(Errno.EAGAIN, e.errno());
            assertFalse(HostileFds.isNonBlocking(fd), "the per-call flag does not depend on O_NONBLOCK");
        });
    }

    @Test
    void unblockingAnEmptyBlockingEventfdReturnsAndMakesItNonBlocking() {
        assertTimeoutPreemptively(LIMIT, () -> {
            fd = LibC.eventfd(0, LibC.EFD_CLOEXEC);
            assertTrue(ClientEventfd.unblockWriters(fd, value), "a blocking eventfd is hostile");
            assertTrue(HostileFds.isNonBlocking(fd));
            assertThrows(ErrnoException.class, () -> LibC.read(fd, value, 8), "the counter stays 0");
        });
    }

    @Test
    void unblockingWakesAWriterBlockedOnASaturatedBlockingEventfd() {
        assertTimeoutPreemptively(LIMIT, () -> {
            fd = HostileFds.saturatedBlockingEventfd(0);
            Thread writer = blockedWriter(() -> writeOne(fd));
            assertTrue(ClientEventfd.unblockWriters(fd, value));
            assertEquals(HostileFds.EVENTFD_MAX, value.get(JAVA_LONG, 0), "the drained counter");
            writer.join(2000);
            assertFalse(writer.isAlive(), "the blocked write returns once the counter is drained");
            LibC.read(fd, value, 8);
            assertEquals(1, value.get(JAVA_LONG, 0), "the woken write of 1 went through");
        });
    }

    @Test
    void theDrainDuringAResetWakesABlockedIntxWriterAndKeepsTheVectorAssigned() {
        assertTimeoutPreemptively(LIMIT, () -> {
            fd = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK); // the client's copy
            try (EventfdInterrupts interrupts = new EventfdInterrupts(0)) {
                interrupts.attach(ConfigSpace.builder().vendorId(0x1234).deviceId(1).interruptPin(1).build());
                assertEquals(0, interrupts.assign(IRQ_INTX, 0, 1, new int[] {LibC.dup(fd)}));
                HostileFds.makeBlockingAndSaturate(fd);
                Thread writer = blockedWriter(() -> interrupts.setIntx(true));
                try (ResetDrain drain = interrupts.drainDuringReset()) {
                    writer.join(2000);
                    assertFalse(writer.isAlive(), "the INTx write returns once the eventfd is drained");
                }
                assertEquals(1, interrupts.assignedVectors(IRQ_INTX), "a reset does not de-assign the vector");
                assertEquals(1, interrupts.signalled());
                assertEquals(1, interrupts.reblockedFds(), "the client's blocking eventfd is counted");
            }
        });
    }
}
