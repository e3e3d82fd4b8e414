package io.javadevices.nvme.model;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.TreeMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.IntConsumer;

/**
 * The namespaces of the NVM subsystem (NVMe 1.4 §6.1): every allocated namespace by NSID, and the subset
 * attached to this controller, which is what I/O and Identify see (the "active" namespaces, §6.1.5).
 *
 * <p>Reads are lock-free: the I/O workers look a namespace up per command in an immutable {@link View}
 * published through one volatile field (an array indexed by NSID and the same namespaces as a list), so
 * the hot path costs one volatile read and an array index, and allocates nothing. Changes (Namespace
 * Management, Attachment, Format NVM; rare and never on an I/O path) are serialised on this object, build a
 * new view and tell the listeners which NSID changed (the Namespace Attribute Changed event, §5.2.1).
 *
 * <p>A command that looked a namespace up before a change finishes on the old {@link Namespace} object;
 * that is why namespaces are replaced, not mutated, when their format changes.
 */
public final class NamespaceTable {
    /** One immutable state: index NSID → attached namespace (null if none), and those ascending. */
    private record View(Namespace[] byNsid, List<Namespace> attached) {
    }

    private final int maxNsid;
    private final TreeMap<Integer, Namespace> allocated = new TreeMap<>(); // guarded by this
    private final boolean[] attachedFlags;                                // guarded by this
    private final List<IntConsumer> listeners = new CopyOnWriteArrayList<>();
    private final List<IntConsumer> inventoryListeners = new CopyOnWriteArrayList<>();
    private volatile View view;

    /** @param maxNsid the highest NSID this subsystem can hold (Identify NN) */
    public NamespaceTable(int maxNsid) {
        if (maxNsid < 1) {
            throw new IllegalArgumentException("maxNsid " + maxNsid);
        }
        this.maxNsid = maxNsid;
        this.attachedFlags = new boolean[maxNsid + 1];
        this.view = new View(new Namespace[maxNsid + 1], List.of());
    }

    /** A table of {@code namespaces}, all attached, NSIDs as they carry them; NN = the highest of them (at least 1). */
    public static NamespaceTable of(List<Namespace> namespaces) {
        int max = namespaces.stream().mapToInt(Namespace::nsid).max().orElse(1);
        NamespaceTable table = new NamespaceTable(max);
        for (Namespace ns : namespaces) {
            table.add(ns, true);
        }
        return table;
    }

    /** The highest NSID (Identify Controller NN): valid NSIDs are 1 to this. */
    public int maxNsid() {
        return maxNsid;
    }

    /** The namespace {@code nsid} if it is attached to this controller (active), else null. Lock-free. */
    public Namespace attached(int nsid) {
        Namespace[] a = view.byNsid;
        return nsid >= 1 && nsid < a.length ? a[nsid] : null;
    }

    /** The attached (active) namespaces, NSID ascending; an immutable snapshot. */
    public List<Namespace> attachedList() {
        return view.attached;
    }

    /** The namespace {@code nsid} if it is allocated (attached or not), else null. */
    public synchronized Namespace allocated(int nsid) {
        return allocated.get(nsid);
    }

    /** Every allocated namespace, NSID ascending; a snapshot. */
    public synchronized List<Namespace> allocatedList() {
        return List.copyOf(allocated.values());
    }

    public synchronized boolean isAttached(int nsid) {
        return nsid >= 1 && nsid <= maxNsid && attachedFlags[nsid];
    }

    /** Adds an allocated namespace, attached or not; its NSID must be free and in range. */
    public synchronized void add(Namespace ns, boolean attach) {
        int nsid = ns.nsid();
        if (nsid < 1 || nsid > maxNsid || allocated.containsKey(nsid)) {
            throw new IllegalArgumentException("NSID " + nsid + " is in use or beyond " + maxNsid);
        }
        allocated.put(nsid, ns);
        attachedFlags[nsid] = attach;
        publish(nsid, attach);
    }

    /** Removes namespace {@code nsid} (detaching it first if needed); returns it, or null if it was not allocated. */
    public synchronized Namespace remove(int nsid) {
        Namespace ns = allocated.remove(nsid);
        if (ns == null) {
            return null;
        }
        boolean was = attachedFlags[nsid];
        attachedFlags[nsid] = false;
        publish(nsid, was);
        return ns;
    }

    /** Attaches or detaches an allocated namespace; false if it is not allocated or already in that state. */
    public synchronized boolean setAttached(int nsid, boolean attach) {
        if (!allocated.containsKey(nsid) || attachedFlags[nsid] == attach) {
            return false;
        }
        attachedFlags[nsid] = attach;
        publish(nsid, true);
        return true;
    }

    /**
     * Replaces namespace {@code ns.nsid()} by {@code ns} (a new format or size): commands already started go
     * on with the old object, new ones see the new one.
     */
    public synchronized void replace(Namespace ns) {
        int nsid = ns.nsid();
        if (!allocated.containsKey(nsid)) {
            throw new IllegalArgumentException("NSID " + nsid + " is not allocated");
        }
        allocated.put(nsid, ns);
        publish(nsid, attachedFlags[nsid]);
    }

    /** Called with the NSID whose attached namespace changed (appeared, went, or changed format or size). */
    public void addListener(IntConsumer changed) {
        listeners.add(changed);
    }

    /**
     * Called, under the table's lock, with the NSID of every change (allocation, deletion, attachment, format),
     * attached or not: what a persistent pool records (its manifest). Runs after the attached-change listeners.
     */
    public void addInventoryListener(IntConsumer changed) {
        inventoryListeners.add(changed);
    }

    private void publish(int nsid, boolean attachedChanged) {
        int changedNsid = attachedChanged ? nsid : 0;
        Namespace[] byNsid = new Namespace[maxNsid + 1];
        List<Namespace> list = new ArrayList<>();
        for (Namespace ns : allocated.values()) {
            if (attachedFlags[ns.nsid()]) {
                byNsid[ns.nsid()] = ns;
                list.add(ns);
            }
        }
        view = new View(byNsid, Collections.unmodifiableList(list));
        if (changedNsid != 0) {
            for (IntConsumer l : listeners) {
                l.accept(changedNsid);
            }
        }
        for (IntConsumer l : inventoryListeners) {
            l.accept(nsid);
        }
    }
}
