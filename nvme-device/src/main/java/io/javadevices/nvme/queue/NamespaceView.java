package io.javadevices.nvme.queue;

import io.javadevices.nvme.backend.AsyncIo;
import io.javadevices.nvme.model.Namespace;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * What one queue worker keeps about one namespace it executes commands on: the {@link Namespace} object it was
 * opened for, that backend's asynchronous path for this worker ({@link AsyncIo}, or null: synchronous), and the
 * per-(queue, namespace) counters of asynchronous operations: in flight now and its high-water mark, completed,
 * and a latency histogram.
 *
 * <p>Single writer (the worker), many readers: the statistics, and the {@link WorkerGrace} that closes a deleted
 * namespace's backend only once no view of it has an operation in flight. The in-flight count is published with a
 * release store (a plain move on x86): no fence per command.
 */
public final class NamespaceView {
    private static final VarHandle IN_FLIGHT;

    static {
        try {
            IN_FLIGHT = MethodHandles.lookup().findVarHandle(NamespaceView.class, "inFlight", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final Namespace namespace;
    private final AsyncIo async;
    private final boolean mayBlock;
    private final QueueWorker worker;
    private final LatencyHistogram latency = new LatencyHistogram();
    @SuppressWarnings("unused") // through IN_FLIGHT
    private int inFlight;
    private int inFlightMax;
    private long completed;

    public NamespaceView(Namespace namespace, AsyncIo async, QueueWorker worker) {
        this.namespace = namespace;
        this.async = async;
        this.mayBlock = namespace.backend().mayBlock(); // asked once per view, not per command
        this.worker = worker;
    }

    public Namespace namespace() {
        return namespace;
    }

    /** The backend's asynchronous path for this worker, or null: its commands run synchronously. */
    public AsyncIo async() {
        return async;
    }

    /** True if the backend's blocking methods may take long ({@code BlockBackend#mayBlock}): not on a polling thread. */
    public boolean mayBlock() {
        return mayBlock;
    }

    QueueWorker worker() {
        return worker;
    }

    /** An operation was handed to the backend. Worker thread. */
    public void started() {
        int n = (int) IN_FLIGHT.get(this) + 1;
        IN_FLIGHT.setRelease(this, n);
        if (n > inFlightMax) {
            inFlightMax = n;
        }
    }

    /** An operation completed after {@code nanos}. Worker thread. */
    public void finished(long nanos) {
        latency.record(nanos);
        completed++;
        IN_FLIGHT.setRelease(this, (int) IN_FLIGHT.get(this) - 1);
    }

    /** Operations in flight now (any thread). */
    public int inFlight() {
        return (int) IN_FLIGHT.getAcquire(this);
    }

    public int inFlightMax() {
        return inFlightMax;
    }

    public long completed() {
        return completed;
    }

    public LatencyHistogram latency() {
        return latency;
    }
}
