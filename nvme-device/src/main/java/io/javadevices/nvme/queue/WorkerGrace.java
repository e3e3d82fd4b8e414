package io.javadevices.nvme.queue;

import io.javadevices.nvme.backend.BlockBackend;
import io.javadevices.nvme.model.Namespace;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/**
 * Frees what a queue worker may still be using only once no worker can be using it: the backend of a
 * deleted namespace (a RAM backend is an mmap; a command still copying into it after munmap would crash the
 * JVM, a file backend would fail a command the guest issued before the delete).
 *
 * <p>The I/O path pays no atomic and no lock per command for it: each {@link QueueWorker} writes its own
 * batch counter twice per batch (odd on entering {@code drain}, even on leaving). Whoever removed a namespace
 * from the {@link io.javadevices.nvme.model.NamespaceTable} (a volatile store) then reads every live worker's
 * counter (volatile loads): a worker found outside a batch (even) will see the new table in its next batch;
 * one found inside (odd) may hold the old namespace, so the release waits until that worker's counter has
 * moved on (its batch ended; it may be in a later batch, which started after the removal and cannot see the
 * namespace) or the worker has ended. This is the grace period of read-copy-update with the batch as the
 * read-side critical section (Linux {@code synchronize_rcu}).
 *
 * <p>Asynchronous operations outlive the batch that started them: after the batches, the release also waits
 * until no registered {@link NamespaceView} of the backend has an operation in flight ({@link NamespaceViews}).
 * A view's in-flight count is raised inside the batch, before the batch counter goes even, so once the batch
 * was seen to end its count is visible here; no new operation on the namespace can start (it is no longer in
 * the table), so the count only falls.
 *
 * <p>The controller's offload thread ({@link CommandOffload}) executes commands outside any worker's batch: it
 * counts its own executions the same way (odd while one runs, after the lookup's volatile store), and a release
 * also waits for the offloaded command running when the namespace left the table. A command still waiting in a
 * lane has looked nothing up yet: it will find the namespace gone.
 *
 * <p>The wait runs on a daemon thread, never on the admin worker that executed the delete: a worker stuck in
 * its backend (a hung NFS file) must not stall the admin queue. Such a release simply waits with the stuck
 * command; a controller that closes gives pending releases a bounded {@link #awaitReleases} and leaks rather
 * than frees memory under a running command.
 */
public final class WorkerGrace {
    private static final System.Logger LOG = System.getLogger(WorkerGrace.class.getName());

    private final Supplier<List<QueueWorker>> workers;
    private final NamespaceViews views;
    /** The controller's offload thread, which executes commands outside the workers' batches, or null. */
    private final CommandOffload offload;
    private final List<Thread> pending = new ArrayList<>(); // guarded by itself

    /** @param workers the workers that may be executing commands now (the queue table's live workers) */
    public WorkerGrace(Supplier<List<QueueWorker>> workers) {
        this(workers, new NamespaceViews(), null);
    }

    /**
     * @param views   where the I/O workers register their asynchronous namespace views
     * @param offload the controller's offload thread ({@link CommandOffload}: its commands count as a batch), or null
     */
    public WorkerGrace(Supplier<List<QueueWorker>> workers, NamespaceViews views, CommandOffload offload) {
        this.workers = workers;
        this.views = views;
        this.offload = offload;
    }

    /** As {@link #afterInFlight(String, Runnable)}, and also after every asynchronous operation on {@code backend}. */
    public void afterInFlight(String what, BlockBackend backend, Runnable release) {
        afterInFlight(what, () -> {
            release.run();
            views.forget(backend);
        }, () -> views.inFlight(backend) > 0);
    }

    /**
     * Runs {@code release} once no command can still be executing on the namespace object {@code old}, which the
     * caller replaced in the table by a smaller copy (the control plane's shrink): the batches as above, then
     * {@code old}'s own asynchronous operations. Those of its successor may go on meanwhile (they stay inside the
     * new end), so a busy namespace does not hold the release.
     */
    public void afterCommandsOn(String what, Namespace old, Runnable release) {
        afterInFlight(what, release, () -> views.inFlight(old) > 0);
    }

    /**
     * Runs {@code release} once every worker that is inside a batch now has left that batch; the caller must
     * have made the resource unreachable first. Returns at once. The calling worker itself (the admin queue's,
     * executing the Namespace Management command) is not waited for: it does not touch the resource again.
     */
    public void afterInFlight(String what, Runnable release) {
        afterInFlight(what, release, () -> false);
    }

    /** {@code busy}: true while asynchronous operations that outlive their batch still use the resource. */
    private void afterInFlight(String what, Runnable release, BooleanSupplier busy) {
        List<QueueWorker> inside = new ArrayList<>();
        List<Long> epochs = new ArrayList<>();
        for (QueueWorker w : workers.get()) {
            long epoch = w.batchEpoch();
            if ((epoch & 1) != 0 && !w.isCurrentThread()) {
                inside.add(w);
                epochs.add(epoch);
            }
        }
        long offloadEpoch = offload == null ? 0 : offload.batchEpoch(); // odd: a command runs there, it may hold it
        if (inside.isEmpty() && (offloadEpoch & 1) == 0 && !busy.getAsBoolean()) {
            release.run();
            return;
        }
        Thread t = Thread.ofPlatform().daemon().name("nvme-release-" + what).unstarted(() -> {
            try {
                long nap = 10_000; // 10 us, doubling to 1 ms: a batch usually ends within microseconds
                for (int i = 0; i < inside.size(); i++) {
                    QueueWorker w = inside.get(i);
                    while (w.batchEpoch() == epochs.get(i) && !w.terminated()) {
                        LockSupport.parkNanos(nap);
                        nap = Math.min(nap * 2, 1_000_000);
                    }
                }
                while ((offloadEpoch & 1) != 0 && offload.batchEpoch() == offloadEpoch) {
                    LockSupport.parkNanos(nap); // the offloaded command that may have looked the namespace up
                    nap = Math.min(nap * 2, 1_000_000);
                }
                while (busy.getAsBoolean()) {
                    LockSupport.parkNanos(nap); // operations outliving their batch
                    nap = Math.min(nap * 2, 1_000_000);
                }
                release.run();
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.WARNING, "releasing {0} failed: {1}", what, e.toString());
            } finally {
                synchronized (pending) {
                    pending.remove(Thread.currentThread());
                }
            }
        });
        synchronized (pending) {
            pending.add(t);
        }
        t.start();
    }

    /** Waits up to {@code millis} for the releases still waiting; true if none is left. */
    public boolean awaitReleases(long millis) {
        long deadline = System.nanoTime() + millis * 1_000_000L;
        while (true) {
            Thread t;
            synchronized (pending) {
                if (pending.isEmpty()) {
                    return true;
                }
                t = pending.getFirst();
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return false;
            }
            try {
                t.join(Math.max(1, left / 1_000_000L));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
    }
}
