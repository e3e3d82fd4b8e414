package io.javadevices.nvme.control;

import io.javadevices.nvme.backend.BlockBackend;
import io.javadevices.nvme.backend.NullBackend;
import io.javadevices.nvme.backend.RamBackend;
import io.javadevices.nvme.backend.RamBudget;
import io.javadevices.nvme.model.Namespace;
import io.javadevices.nvme.model.NamespaceIds;
import io.javadevices.nvme.model.NamespaceTable;
import io.javadevices.nvme.pool.NvmPool;
import io.javadevices.nvme.queue.WorkerGrace;
import io.javadevices.pci.DeviceControl;

import java.io.IOException;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The NVMe controller's control-plane methods ({@code namespace_list}, {@code namespace_add},
 * {@code namespace_remove}, {@code namespace_resize}): the host changes the namespaces while the guest runs, and the
 * guest learns of each change by itself. Every change goes through the {@link NvmPool} (serialised with the guest's
 * own Namespace Management) into the {@link NamespaceTable}, whose listeners record the NSID in the Changed
 * Namespace List and raise Namespace Attribute Changed (NVMe 1.4 §5.2.1, log page 04h): Linux
 * {@code nvme_handle_aen_notice} queues {@code nvme_scan_work}, which reads the log, rescans with Identify CNS 02h
 * and CNS 00h, adds or removes the disk, and revalidates its capacity from NSZE. The I/O path takes no lock for
 * it: the table publishes an immutable view through one volatile field.
 *
 * <p><b>Which namespaces.</b> Only a controller without {@code pool=} (the default pool, whose capacity is the sum
 * of the namespaces) is host-managed ({@link NvmPool#hostManaged}); with an explicit pool the guest owns the
 * namespaces and the changing methods are refused ({@code namespace_list} still answers).
 *
 * <p><b>Add</b> opens the backend the command line's grammar names ({@link NamespaceGrammar}), attached, at the
 * lowest free NSID or the one asked for, with new random identifiers (a new disk, never mistaken by the guest for one
 * it knew under that NSID). <b>Remove</b> takes the namespace out of the table at once (later commands get
 * Invalid Namespace or Format), lets the commands in flight on it finish ({@link WorkerGrace}), then flushes and
 * closes the backend; the call waits for that (at most {@code waitMillis}) and reports whether the flush succeeded.
 * <b>Resize</b> (RAM, null, regular files; an NBD export's size is its server's) grows the backend before the
 * table shows the new size, and shrinks it only after the commands in flight on the old size finished; a file
 * shrink destroys the data past the new end, so it needs {@code "shrink": true} (as {@code qemu-img resize
 * --shrink}); a RAM grow must fit the host's RAM + swap ({@link RamBudget}).
 *
 * <p>Calls come one at a time from the host's control thread ({@link DeviceControl}); every parameter is checked
 * before anything changes, and a refused call changes nothing.
 */
public final class NamespaceControl implements DeviceControl {
    private static final System.Logger LOG = System.getLogger(NamespaceControl.class.getName());
    public static final String LIST = "namespace_list", ADD = "namespace_add", REMOVE = "namespace_remove",
            RESIZE = "namespace_resize";
    private static final Set<String> METHODS = Set.of(LIST, ADD, REMOVE, RESIZE);
    private static final String NAMESPACE_EXAMPLE = "a namespace such as \"ram:1G\" or \"file:/img/b.raw\"";

    private final NvmPool pool;
    private final NamespaceTable table;
    private final NamespaceGrammar grammar;
    private final WorkerGrace grace;
    private final long waitMillis;
    /** The grammar each host-known backend was named in; guest-created namespaces have none. Control thread only. */
    private final Map<BlockBackend, NamespaceLabel> labels = new IdentityHashMap<>();
    private final ShrinkGate shrinks = new ShrinkGate();

    /**
     * @param initial    the labels of the command-line namespaces by NSID (their grammar text)
     * @param waitMillis how long a remove or shrink waits for a command in flight (the controller's stop timeout)
     */
    public NamespaceControl(NvmPool pool, NamespaceGrammar grammar, WorkerGrace grace,
                            Map<Integer, NamespaceGrammar.Parsed> initial, long waitMillis) {
        this.pool = pool;
        this.table = pool.table();
        this.grammar = grammar;
        this.grace = grace;
        this.waitMillis = waitMillis;
        initial.forEach((nsid, parsed) -> {
            Namespace ns = table.allocated(nsid);
            if (ns != null) {
                labels.put(ns.backend(), NamespaceLabel.of(parsed));
            }
        });
    }

    @Override
    public Set<String> methods() {
        return METHODS;
    }

    @Override
    public Object call(String method, Map<String, Object> params) throws ControlException {
        return switch (method) {
            case LIST -> list(new ControlParams(method, params, Set.of()));
            case ADD -> add(new ControlParams(method, params, Set.of("namespace", "nsid")));
            case REMOVE -> remove(new ControlParams(method, params, Set.of("nsid")));
            case RESIZE -> resize(new ControlParams(method, params, Set.of("nsid", "size", "shrink")));
            case null, default -> throw new ControlException(ControlException.Kind.METHOD_NOT_FOUND, "unknown method '"
                    + method + "' (the NVMe controller answers " + String.join(", ", LIST, ADD, REMOVE, RESIZE) + ")");
        };
    }

    // ------------------------------------------------------------------ namespace_list

    private Map<String, Object> list(ControlParams p) {
        List<Namespace> all = table.allocatedList();
        labels.keySet().retainAll(all.stream().map(Namespace::backend).toList()); // a guest may have deleted some
        List<Object> out = new ArrayList<>();
        for (Namespace ns : all) {
            Map<String, Object> m = entry(ns);
            m.put("attached", table.isAttached(ns.nsid()));
            out.add(m);
        }
        return result("namespaces", out);
    }

    private Map<String, Object> entry(Namespace ns) {
        NamespaceLabel label = labels.get(ns.backend());
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("nsid", (long) ns.nsid());
        m.put("spec", label != null ? label.text(ns) : ns.backend().describe());
        m.put("size_bytes", ns.bytes());
        m.put("block_size", (long) (1 << ns.lbaShift()));
        return m;
    }

    // ------------------------------------------------------------------ namespace_add

    private Map<String, Object> add(ControlParams p) throws ControlException {
        String text = p.string("namespace", NAMESPACE_EXAMPLE);
        NamespaceGrammar.Parsed parsed;
        try {
            parsed = grammar.parse(text);
        } catch (IllegalArgumentException e) {
            throw p.invalid("parameter 'namespace' is not a namespace: " + e.getMessage());
        }
        int nsid = p.has("nsid") ? nsid(p) : 0;
        requireHostManaged(p);
        if (nsid != 0 && table.allocated(nsid) != null) {
            throw p.refused("NSID " + nsid + " is in use");
        }
        if (nsid == 0) {
            nsid = pool.lowestFreeNsid();
            if (nsid == 0) {
                throw p.refused("all " + table.maxNsid() + " NSIDs are in use (the controller's max-namespaces)");
            }
        }
        if (parsed.kind().equals("ram")) {
            checkRam(p, parsed.size());
        }
        BlockBackend backend;
        try {
            backend = parsed.open().get();
        } catch (RuntimeException e) {
            throw p.refused("namespace '" + text + "' cannot be opened: " + e.getMessage());
        }
        if (backend.size() < parsed.lbaSize()) {
            backend.close();
            throw p.refused("namespace '" + text + "' holds " + backend.size() + " bytes, less than one "
                    + parsed.lbaSize() + "-byte block");
        }
        Namespace ns = new Namespace(nsid, backend, parsed.lbaSize(), NamespaceIds.random(), 0);
        try {
            pool.addForHost(ns);
        } catch (NvmPool.Refusal e) {
            backend.close();
            throw p.refused(e.getMessage()); // the guest took the NSID meanwhile
        }
        labels.put(backend, NamespaceLabel.of(parsed));
        LOG.log(System.Logger.Level.INFO, "namespace {0} added: {1}", nsid, backend.describe());
        Map<String, Object> m = entry(ns);
        m.remove("spec");
        return m;
    }

    // ------------------------------------------------------------------ namespace_remove

    private Map<String, Object> remove(ControlParams p) throws ControlException {
        int nsid = nsid(p);
        Namespace ns = existing(p, nsid);
        requireHostManaged(p);
        if (ns.formatInProgress()) {
            throw p.refused("namespace " + nsid + " is being formatted by the guest; try again when that has finished");
        }
        try {
            ns = pool.removeForHost(nsid);
        } catch (NvmPool.Refusal e) {
            throw p.refused(e.getMessage());
        }
        BlockBackend backend = ns.backend();
        labels.remove(backend);
        Completion done = new Completion();
        grace.afterInFlight("ns" + nsid, backend, () -> done.run(() -> {
            try {
                backend.flush(); // the writes completed before the removal, made durable before the close
            } finally {
                backend.close();
            }
        }));
        boolean flushed = done.await(waitMillis) && done.failure() == null;
        if (!flushed) {
            LOG.log(System.Logger.Level.WARNING, "namespace {0} removed, but {1}", nsid, done.failure() != null
                    ? "its flush failed: " + done.failure() : "a command in flight on it has not finished yet; it is"
                    + " flushed and closed once it has");
        }
        return result("nsid", (long) nsid, "flushed", flushed);
    }

    // ------------------------------------------------------------------ namespace_resize

    private Map<String, Object> resize(ControlParams p) throws ControlException {
        int nsid = nsid(p);
        long bytes = p.size("size");
        boolean shrinkAllowed = p.flag("shrink", false);
        Namespace ns = existing(p, nsid);
        int lba = 1 << ns.lbaShift();
        if (bytes % lba != 0) {
            throw p.invalid("parameter 'size' must be a multiple of namespace " + nsid + "'s " + lba + "-byte blocks: "
                    + bytes);
        }
        BlockBackend backend = ns.backend();
        requireHostManaged(p);
        String fixed = backend.notResizable();
        if (fixed != null) {
            throw p.refused("namespace " + nsid + " cannot be resized: " + fixed);
        }
        if (ns.formatInProgress() || shrinks.pending(backend)) {
            throw p.refused("namespace " + nsid + " is being formatted or shrunk; try again when that has finished");
        }
        long old = ns.bytes();
        if (bytes < old && !shrinkAllowed && !(backend instanceof RamBackend || backend instanceof NullBackend)) {
            throw p.invalid("a shrink of namespace " + nsid + " from " + old + " to " + bytes + " bytes destroys the"
                    + " data past the new end: pass \"shrink\": true to confirm");
        }
        if (bytes > old) {
            grow(p, ns, bytes);
        } else if (bytes < old) {
            shrink(p, ns, bytes);
        }
        return result("nsid", (long) nsid, "size_bytes", bytes, "blocks", bytes / lba);
    }

    private void grow(ControlParams p, Namespace ns, long bytes) throws ControlException {
        BlockBackend backend = ns.backend();
        if (backend instanceof RamBackend) {
            checkRam(p, bytes - ns.bytes());
        }
        try {
            backend.resize(bytes);
        } catch (IOException | RuntimeException e) {
            throw p.refused("namespace " + ns.nsid() + " not grown: " + e.getMessage());
        }
        try {
            pool.replaceForHost(ns, ns.resized(bytes));
        } catch (NvmPool.Refusal e) {
            undo(backend, ns.bytes());
            throw p.refused(e.getMessage());
        }
        LOG.log(System.Logger.Level.INFO, "namespace {0} grown from {1} to {2} bytes", ns.nsid(),
                Long.toString(ns.bytes()), Long.toString(bytes));
    }

    /** The table first (no new command reaches past the new end), the backend once the old size's commands ended. */
    private void shrink(ControlParams p, Namespace ns, long bytes) throws ControlException {
        try {
            pool.replaceForHost(ns, ns.resized(bytes));
        } catch (NvmPool.Refusal e) {
            throw p.refused(e.getMessage());
        }
        long blocks = bytes >>> ns.lbaShift();
        ns.uncorrectable().clear(blocks, ns.blocks() - blocks); // the range reads zero if it grows again
        BlockBackend backend = ns.backend();
        Completion done = shrinks.begin(backend);
        grace.afterCommandsOn("ns" + ns.nsid() + "-shrink", ns, () -> done.run(() -> {
            try {
                backend.resize(bytes);
            } finally {
                shrinks.end(backend);
            }
        }));
        if (!done.await(waitMillis) || done.failure() != null) {
            LOG.log(System.Logger.Level.WARNING, "namespace {0}: shrunk to {1} bytes for the guest; its backend {2}",
                    ns.nsid(), Long.toString(bytes), done.failure() != null ? "kept its old size: " + done.failure()
                            : "is cut once a command in flight on the old size has finished");
        }
        LOG.log(System.Logger.Level.INFO, "namespace {0} shrunk from {1} to {2} bytes", ns.nsid(),
                Long.toString(ns.bytes()), Long.toString(bytes));
    }

    private static void undo(BlockBackend backend, long bytes) {
        try {
            backend.resize(bytes);
        } catch (IOException | RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "backend {0} not shrunk back to {1} bytes: {2}", backend.describe(),
                    bytes, e.toString());
        }
    }

    // ------------------------------------------------------------------ checks shared by the methods

    /** A valid NSID: 1 to the controller's max-namespaces (Identify NN). */
    private int nsid(ControlParams p) throws ControlException {
        long n = p.integer("nsid");
        if (n < 1 || n > table.maxNsid()) {
            throw p.invalid("parameter 'nsid' must be in 1.." + table.maxNsid() + " (the controller's max-namespaces), not "
                    + n + (n == 0xFFFF_FFFFL ? " (FFFFFFFFh, the broadcast NSID, names no single namespace)" : ""));
        }
        return (int) n;
    }

    private Namespace existing(ControlParams p, int nsid) throws ControlException {
        Namespace ns = table.allocated(nsid);
        if (ns == null) {
            throw p.invalid("parameter 'nsid': the controller has no namespace " + nsid);
        }
        return ns;
    }

    private void requireHostManaged(ControlParams p) throws ControlException {
        if (!pool.hostManaged()) {
            throw p.refused("this controller's namespaces come from its capacity pool (option pool=) and are managed"
                    + " by the guest (Namespace Management); the control plane only lists them");
        }
    }

    private void checkRam(ControlParams p, long more) throws ControlException {
        try {
            RamBudget.check(pool.ramBytes() + more);
        } catch (IllegalArgumentException e) {
            throw p.refused(e.getMessage());
        }
    }

    private static Map<String, Object> result(Object... keyValues) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < keyValues.length; i += 2) {
            m.put((String) keyValues[i], keyValues[i + 1]);
        }
        return m;
    }
}
