package io.javadevices.nvme;

import io.javadevices.nvme.queue.CommandHandler;
import io.javadevices.nvme.queue.CompletionQueue;
import io.javadevices.nvme.queue.IdlePolicy;
import io.javadevices.nvme.queue.QueueStats;
import io.javadevices.nvme.queue.QueueWorker;
import io.javadevices.nvme.queue.Sqe;
import io.javadevices.nvme.queue.SubmissionQueue;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.testkit.TestHost;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@link ControllerReset} on its own: a reset that catches the admin worker inside Create I/O SQ must also
 * stop and await the worker that command starts, even when the admin worker ends at once afterwards.
 */
class ControllerResetTest {
    private final TestHost host = TestHost.heap(1 << 20);
    private final List<QueueWorker> live = new CopyOnWriteArrayList<>();

    @AfterEach
    void close() {
        live.forEach(QueueWorker::requestStop);
        host.close();
    }

    private QueueWorker.Controller controller() {
        GuestMemory memory = host.memory();
        return new QueueWorker.Controller() {
            public GuestMemory memory() {
                return memory;
            }

            public void completionsPosted(CompletionQueue cq, int posted, QueueStats stats) {
            }

            public void flushInterrupts(CompletionQueue cq, QueueStats stats) {
            }

            public void invalidSubmissionTail(int qid, int value) {
            }

            public void invalidCompletionHead(int qid, int value) {
            }

            public void commandFetchFailed(int qid, long address) {
            }

            public void fatal(String why) {
            }

            public void commandFailed(int sqid, int cid, Throwable t) {
            }
        };
    }

    @Test
    void aQueueWhoseEngineCannotBeMadeRunsSynchronously() throws Exception {
        IdlePolicy.Settings idle = new IdlePolicy.Settings(0, 0, 0, 1000, 1000);
        CompletionQueue cq1 = new CompletionQueue(1, 16, 0x3000, 1, false);
        SubmissionQueue sq1 = new SubmissionQueue(1, 16, 0x4000, cq1, 0);
        QueueWorker io = new QueueWorker(controller(), sq1, (c, w) -> 0L, idle, (tags, thread) -> {
            throw new io.javadevices.nvme.backend.UringUnavailableException("RLIMIT_MEMLOCK");
        }, 16, null, null);
        assertNull(io.engine(), "no engine: the queue's commands run on the worker");
        assertNull(io.inFlight());
        live.add(io);
        io.start();
        io.requestStop();
        assertTrue(io.awaitExit(5000), "and it stops like any synchronous worker");
    }

    @Test
    void resetAwaitsTheWorkerThatAStoppingCreateSqStarted() throws Exception {
        QueueWorker.Controller controller = controller();
        IdlePolicy.Settings idle = new IdlePolicy.Settings(0, 0, 0, 1000, 1000);
        CountDownLatch inCreate = new CountDownLatch(1), release = new CountDownLatch(1);
        QueueWorker[] created = new QueueWorker[1];
        CommandHandler createSq = new CommandHandler() {
            @Override
            public long execute(Sqe cmd, QueueWorker worker) {
                inCreate.countDown();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    throw new AssertionError(e);
                }
                // What QueueTable.installSubmissionQueue does: list the new worker, then start it.
                CompletionQueue cq1 = new CompletionQueue(1, 16, 0x3000, 1, false);
                SubmissionQueue sq1 = new SubmissionQueue(1, 16, 0x4000, cq1, 0);
                QueueWorker io = new QueueWorker(controller, sq1, (c, w) -> 0L, idle);
                created[0] = io;
                live.add(io);
                io.start();
                return 0L;
            }
        };
        CompletionQueue cq0 = new CompletionQueue(0, 16, 0x1000, 0, false);
        SubmissionQueue sq0 = new SubmissionQueue(0, 16, 0x2000, cq0, 0);
        QueueWorker admin = new QueueWorker(controller, sq0, createSq, idle);
        live.add(admin);
        sq0.mmioTail(1); // one admin command: the Create I/O SQ
        admin.start();
        assertTrue(inCreate.await(5, TimeUnit.SECONDS));

        ControllerReset reset = new ControllerReset(5_000_000_000L, why -> {
        });
        AtomicInteger asked = new AtomicInteger();
        AtomicBoolean ioWorkerRunningAtCompletion = new AtomicBoolean(true);
        CountDownLatch completed = new CountDownLatch(1);
        reset.begin(() -> {
            List<QueueWorker> snapshot = List.copyOf(live);
            if (asked.incrementAndGet() == 2) {
                release.countDown(); // the Create I/O SQ goes on right after the reset thread listed the workers
            }
            return snapshot;
        }, () -> {
            ioWorkerRunningAtCompletion.set(created[0] == null || !created[0].awaitExit(0));
            completed.countDown();
        });
        assertTrue(completed.await(5, TimeUnit.SECONDS), "the reset did not complete");
        assertFalse(ioWorkerRunningAtCompletion.get(),
                "the reset completed (CSTS.RDY = 0) while the worker started by Create I/O SQ could still DMA");
        reset.close();
    }
}
