package io.javadevices.nvme.queue;

import io.javadevices.nvme.backend.BlockBackend;
import io.javadevices.nvme.model.Namespace;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * The controller's register of the I/O workers' {@link NamespaceView}s with an asynchronous path: where the
 * {@link WorkerGrace} finds the operations still in flight on a deleted namespace's backend, and where the
 * statistics sum the per-(queue, namespace) counters. A view is registered once, when its worker first executes
 * a command on that namespace object (never per command); the views of ended workers are folded into totals
 * when the next one registers, so the list stays as long as the live queues times their namespaces. Views and
 * totals belong to a namespace's backend: a format (same backend) keeps them, a delete drops them
 * ({@link #forget}), so a namespace created again with the same NSID starts from zero.
 */
public final class NamespaceViews {
    /** Counters summed over queues for one namespace ({@link #totals}). */
    public static final class Totals {
        public int inFlight;
        public int inFlightMax;
        public long completed;
        public final LatencyHistogram latency = new LatencyHistogram();

        void add(NamespaceView v) {
            inFlight += v.inFlight();
            inFlightMax = Math.max(inFlightMax, v.inFlightMax());
            completed += v.completed();
            v.latency().addTo(latency);
        }
    }

    private final List<NamespaceView> views = new ArrayList<>(); // guarded by this
    private final Map<BlockBackend, Totals> ended = new IdentityHashMap<>(); // guarded by this

    public synchronized void register(NamespaceView view) {
        views.removeIf(v -> {
            if (v.worker().terminated() && v.inFlight() == 0) {
                ended.computeIfAbsent(v.namespace().backend(), b -> new Totals()).add(v);
                return true;
            }
            return false;
        });
        views.add(view);
    }

    /** Operations in flight now on {@code backend}, over every registered view. */
    public synchronized int inFlight(BlockBackend backend) {
        int n = 0;
        for (NamespaceView v : views) {
            if (v.namespace().backend() == backend) {
                n += v.inFlight();
            }
        }
        return n;
    }

    /** Operations in flight now on the namespace object {@code ns} (not on a resized or reformatted successor). */
    public synchronized int inFlight(Namespace ns) {
        int n = 0;
        for (NamespaceView v : views) {
            if (v.namespace() == ns) {
                n += v.inFlight();
            }
        }
        return n;
    }

    /** The counters of {@code ns}'s views (live and ended queues) summed. */
    public synchronized Totals totals(Namespace ns) {
        BlockBackend backend = ns.backend();
        Totals t = new Totals();
        Totals old = ended.get(backend);
        if (old != null) {
            t.inFlightMax = old.inFlightMax;
            t.completed = old.completed;
            old.latency.addTo(t.latency);
        }
        for (NamespaceView v : views) {
            if (v.namespace().backend() == backend) {
                t.add(v);
            }
        }
        return t;
    }

    /**
     * The counters of each live queue's views summed over its namespaces, by SQ id ({@code sq<N>.inflight},
     * {@code sq<N>.latency}); a queue whose worker ended is left out (its SQ is gone or being replaced).
     */
    public synchronized Map<Integer, Totals> byQueue() {
        Map<Integer, Totals> m = new java.util.TreeMap<>();
        for (NamespaceView v : views) {
            if (!v.worker().terminated()) {
                m.computeIfAbsent(v.worker().queue().qid, q -> new Totals()).add(v);
            }
        }
        return m;
    }

    /** Forgets {@code backend}'s views and totals: its namespace was deleted and nothing is in flight on it. */
    public synchronized void forget(BlockBackend backend) {
        ended.remove(backend);
        views.removeIf(v -> v.namespace().backend() == backend);
    }
}
