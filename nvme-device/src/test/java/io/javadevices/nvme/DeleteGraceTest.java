package io.javadevices.nvme;

import io.javadevices.nvme.backend.BlockBackend;
import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.nvme.driver.LinuxLikeDriver;
import io.javadevices.pci.testkit.TestHost;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Deleting a namespace while an I/O worker is inside a command on it: the delete completes at once (the admin
 * queue is not held by the stuck command), the backend is closed only after the command returned, and the
 * command completes normally (a RAM backend closed under it would be an munmap under a running copy).
 */
class DeleteGraceTest {
    private TestHost host;
    private GatedBackend gate;

    /** Records a close that happens while a read is still inside the backend. */
    private static final class InFlightProbe implements BlockBackend {
        final BlockBackend inner;
        final AtomicInteger inside = new AtomicInteger();
        volatile boolean closedUnderCommand, closed;

        InFlightProbe(BlockBackend inner) {
            this.inner = inner;
        }

        @Override public long size() { return inner.size(); }
        @Override public void read(long offset, MemorySegment dst) throws IOException {
            inside.incrementAndGet();
            try {
                inner.read(offset, dst);
            } finally {
                inside.decrementAndGet();
            }
        }
        @Override public void write(long offset, MemorySegment src) throws IOException { inner.write(offset, src); }
        @Override public void flush() throws IOException { inner.flush(); }
        @Override public void writeZeroes(long offset, long length) throws IOException { inner.writeZeroes(offset, length); }
        @Override public void deallocate(long offset, long length) throws IOException { inner.deallocate(offset, length); }
        @Override public boolean deallocatedReadsZero() { return inner.deallocatedReadsZero(); }
        @Override public String describe() { return inner.describe(); }
        @Override public void close() {
            if (inside.get() > 0) {
                closedUnderCommand = true;
            }
            closed = true;
            inner.close();
        }
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

    @Test
    void aDeletedNamespacesBackendIsClosedOnlyAfterItsInFlightCommand() {
        host = TestHost.heap(32L << 20);
        Map<String, String> o = Map.of("queues", "1", "namespaces", "ram:16M");
        InFlightProbe[] probe = new InFlightProbe[1];
        host.attach(ctx -> new NvmeController(NvmeOptions.parse(o), ctx,
                spec -> probe[0] = new InFlightProbe(gate = new GatedBackend(spec.open()))));
        LinuxLikeDriver driver = new LinuxLikeDriver(host);
        driver.bringUp(1, 16, false);
        NamespaceCommands ns = new NamespaceCommands(driver);
        HostQueue q = driver.ioQueue(1);
        long buf = host.allocatePages(1);

        gate.arm(true);
        q.submit(Command.read(1, 0, 8, buf, 0));
        try {
            gate.awaitEntered();
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
        assertTrue(ns.delete(1).ok(), "the delete completes while the read is held");
        assertEquals(List.of(), ns.list(0x10));
        assertFalse(probe[0].closed, "not closed while the worker is inside its batch");
        gate.release();
        List<Completion> held = q.awaitCompletions(1, Duration.ofSeconds(5));
        assertTrue(held.get(0).ok(), "the in-flight read completes normally: " + held.get(0));
        awaitClosed(probe[0]);
        assertFalse(probe[0].closedUnderCommand, "the backend was closed while a command was inside it");
        status(q.execute(Command.read(1, 0, 1, buf, 0)), 0x0B, "a later command sees no namespace");
    }

    /**
     * Asynchronous operations outlive the batch that started them: the backend of a namespace deleted with
     * operations in flight closes only after the last of them completed.
     */
    @Test
    void aDeletedNamespacesBackendClosesOnlyAfterItsOperationsInFlightComplete() {
        host = TestHost.heap(32L << 20);
        Map<String, String> o = Map.of("queues", "1", "namespaces", "ram:16M", "io-engine", "threads");
        HeldBackend[] held = new HeldBackend[1];
        host.attach(ctx -> new NvmeController(NvmeOptions.parse(o), ctx,
                spec -> held[0] = new HeldBackend(spec.open())));
        LinuxLikeDriver driver = new LinuxLikeDriver(host);
        driver.bringUp(1, 16, false);
        NamespaceCommands ns = new NamespaceCommands(driver);
        HostQueue q = driver.ioQueue(1);
        long buf = host.allocatePages(1);
        q.queue(Command.read(1, 0, 1, buf, 0));
        q.queue(Command.write(1, 1, 1, buf, 0));
        q.ringSq();
        List<HeldBackend.Op> ops = held[0].awaitHeld(2);
        assertTrue(ns.delete(1).ok(), "the delete completes with operations in flight");
        assertFalse(held[0].closed(), "not closed while two operations are in flight");
        held[0].complete(ops.get(0));
        assertEquals(1, q.awaitCompletions(1, Duration.ofSeconds(5)).size());
        assertFalse(held[0].closed(), "one is still in flight");
        held[0].complete(ops.get(1));
        long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        while (!held[0].closed()) {
            if (System.nanoTime() > deadline) {
                fail("the deleted namespace's backend was never released");
            }
            Thread.onSpinWait();
        }
        assertFalse(held[0].closedWithOperationsInFlight());
        assertTrue(q.awaitCompletions(1, Duration.ofSeconds(5)).getFirst().ok(),
                "commands accepted before the delete complete normally");
        status(q.execute(Command.read(1, 0, 1, buf, 0)), 0x0B, "a later command sees no namespace");
    }

    private static void status(Completion c, int sc, String what) {
        assertEquals(sc, c.sc(), what + ": " + c);
    }

    private static void awaitClosed(InFlightProbe p) {
        long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        while (!p.closed) {
            if (System.nanoTime() > deadline) {
                fail("the deleted namespace's backend was never released");
            }
            Thread.onSpinWait();
        }
    }
}
