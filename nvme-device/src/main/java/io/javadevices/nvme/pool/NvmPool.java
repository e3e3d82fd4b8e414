package io.javadevices.nvme.pool;

import io.javadevices.nvme.backend.BlockBackend;
import io.javadevices.nvme.backend.FileBackend;
import io.javadevices.nvme.backend.RamBackend;
import io.javadevices.nvme.backend.RamBudget;
import io.javadevices.nvme.model.Namespace;
import io.javadevices.nvme.model.NamespaceIds;
import io.javadevices.nvme.model.NamespaceTable;
import io.javadevices.nvme.spec.Status;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * The NVM capacity of the subsystem (NVMe 1.4 §8.12, Namespace Management): a total (Identify Controller
 * TNVMCAP) from which every namespace takes its size, the rest unallocated (UNVMCAP), and the
 * {@link NamespaceTable} built from it. Namespace Management and Attachment change the table only through
 * this class, so capacity, table and manifest agree.
 *
 * <p><b>Kinds</b> ({@link PoolSpec}). A RAM pool creates namespaces as sparse {@link RamBackend}s: throwaway,
 * nothing survives the process. A directory pool creates each namespace as a sparse file
 * {@code nsNSID-XXXXXXXX.img} in the directory (such a file no manifest entry names is removed at start: a
 * create cut short by a crash, never acknowledged) and keeps the table in its {@link PoolManifest}, written on
 * every change (a {@link NamespaceTable#addInventoryListener} listener, so a Format NVM's
 * {@link NamespaceTable#replace} is recorded with its new LBA size too); a restarted server presents the same
 * NSIDs, sizes, formats, attachment and identifiers. The directory is locked ({@code pool.lock}) against a
 * second server. Sparse files promise capacity the file system may not have: a write into a full file system
 * fails with Write Fault, the pool's size is the operator's promise.
 *
 * <p><b>No pool given</b> (the default): a RAM pool exactly the size of the command-line namespaces, so
 * TNVMCAP is their sum and UNVMCAP 0, and nothing changes for an existing configuration; a guest that deletes
 * a namespace can create RAM namespaces in its place.
 *
 * <p><b>Command-line namespaces</b> come out of the pool: their sizes (a {@code file:} namespace without a
 * size: its file's) are allocated capacity, and a configuration whose namespaces exceed an explicit pool is
 * refused at start. They keep the serial+NSID identifiers ({@link NamespaceIds#derived}). With a directory pool
 * they must be {@code file:} namespaces (RAM content could not survive what the manifest promises); they
 * seed a new pool only: once the directory holds a manifest, the manifest is the table and command-line
 * namespaces are not opened again (logged), so the same command line restarts the same subsystem. A
 * {@code file:} path outside the pool directory is fine: it is recorded by its absolute path, counted in the
 * capacity, and, like every command-line file, never deleted by a Namespace Management delete (only the
 * files the pool created are).
 *
 * <p><b>RAM budget</b>: a RAM namespace is created only if all RAM namespaces together still fit the host's
 * RAM + swap ({@link RamBudget}, the rule applied to command-line namespaces at start), else Namespace
 * Insufficient Capacity.
 *
 * <p><b>Deletion</b> removes the namespace from the table at once (capacity returned, Identify no longer shows
 * it) and hands the backend to a {@link Retirer}, which closes it (and deletes a pool-created file) only once no
 * queue worker can still be executing a command on it.
 *
 * <p>Thread-safety: changes are serialised on this object (the admin worker makes them); the manifest listener
 * runs under the table's lock and never takes this one.
 */
public final class NvmPool implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(NvmPool.class.getName());

    /** Runs a release once no worker may use what it frees (WorkerGrace#afterInFlight). */
    @FunctionalInterface
    public interface Retirer {
        /** {@code backend}: the deleted namespace's, whose asynchronous operations in flight are waited for too. */
        void afterInFlight(String what, BlockBackend backend, Runnable release);
    }

    /**
     * A command-line namespace: opened only if it is used ({@code open}), and for a {@code file:} namespace its
     * path (null otherwise).
     */
    public record Seed(Path file, int lbaSize, Supplier<BlockBackend> open) {
    }

    /** A command the pool refuses, with the NVMe status to complete it with. */
    public static final class Refusal extends Exception {
        private final int status;

        Refusal(int status, String message) {
            super(message, null, false, false);
            this.status = status;
        }

        public int status() {
            return status;
        }
    }

    /** Where a directory pool's namespace lives: path as recorded, and whether the pool created (owns) it. */
    private record Placement(String path, boolean owned) {
    }

    private final Path directory;           // null: a RAM pool
    /** Changes only for a {@link #hostManaged} pool, with the host's namespaces (read by Identify). */
    private volatile long capacity;
    private final boolean hostManaged;
    private final NamespaceTable table;
    private final PoolManifest manifest;     // null: a RAM pool
    private final Map<Integer, Placement> placements = new ConcurrentHashMap<>();
    private final FileChannel lockChannel;
    private final FileLock lock;
    private volatile Retirer retirer = (what, backend, release) -> release.run();
    /** The failure of the manifest write the last change caused, or null (the change is then undone). */
    private volatile IOException saveFailure;

    NvmPool(Path directory, long capacity, NamespaceTable table, FileChannel lockChannel, FileLock lock) {
        this(directory, capacity, false, table, lockChannel, lock);
    }

    /** @param hostManaged the default pool (no {@code pool=}): see {@link #hostManaged()} */
    NvmPool(Path directory, long capacity, boolean hostManaged, NamespaceTable table, FileChannel lockChannel,
            FileLock lock) {
        this.directory = directory;
        this.capacity = capacity;
        this.hostManaged = hostManaged;
        this.table = table;
        this.manifest = directory == null ? null : new PoolManifest(directory);
        this.lockChannel = lockChannel;
        this.lock = lock;
    }

    /**
     * Opens the pool {@code spec} (null: the default, see the class comment) with the command-line namespaces
     * {@code seeds} as NSIDs 1, 2, ..., attached ({@link PoolOpening}). Any inconsistency is an
     * {@link IllegalArgumentException} with a message for the operator, and nothing stays open.
     *
     * @param maxNsid Identify NN (and MNAN): the highest NSID the table holds
     */
    public static NvmPool open(PoolSpec spec, List<Seed> seeds, String serial, int maxNsid) {
        return PoolOpening.open(spec, seeds, serial, maxNsid);
    }

    // ------------------------------------------------------------------ for PoolOpening

    Path directory() {
        return directory;
    }

    PoolManifest manifest() {
        return manifest;
    }

    /** Records where namespace {@code nsid} lives (before it is added to the table). */
    void place(int nsid, String path, boolean owned) {
        placements.put(nsid, new Placement(path, owned));
    }

    /** From now on every change of the table is written to the manifest; writes it once now. */
    void recordChanges() throws IOException {
        table.addInventoryListener(this::save);
        manifest.write(entries());
    }

    public NamespaceTable table() {
        return table;
    }

    /** True for a directory pool (namespaces persist). */
    public boolean persistent() {
        return directory != null;
    }

    /** Where releases of deleted namespaces go (the controller's worker grace). */
    public void retirer(Retirer retirer) {
        this.retirer = retirer;
    }

    /** TNVMCAP: the pool's total size in bytes. */
    public long capacity() {
        return capacity;
    }

    /** UNVMCAP: the capacity no namespace holds, in bytes. */
    public long unallocated() {
        return Math.max(0, capacity - allocatedBytes());
    }

    long allocatedBytes() {
        long used = 0;
        for (Namespace ns : table.allocatedList()) {
            used += ns.bytes();
        }
        return used;
    }

    /**
     * Namespace Management create (§5.20.1): a new, unattached namespace of {@code bytes} with LBAs of
     * {@code lbaSize}, at the lowest free NSID, with new identifiers. Returns its NSID.
     */
    public synchronized int create(long bytes, int lbaSize, int nmic) throws Refusal {
        int nsid = 0;
        for (int n = 1; n <= table.maxNsid() && nsid == 0; n++) {
            if (table.allocated(n) == null) {
                nsid = n;
            }
        }
        if (nsid == 0) {
            throw new Refusal(Status.NAMESPACE_IDENTIFIER_UNAVAILABLE, "all " + table.maxNsid() + " NSIDs allocated");
        }
        if (bytes > unallocated()) {
            throw new Refusal(Status.NAMESPACE_INSUFFICIENT_CAPACITY, bytes + " bytes asked, " + unallocated() + " free");
        }
        NamespaceIds ids = NamespaceIds.random();
        BlockBackend backend;
        Placement placement = null;
        if (directory == null) {
            try {
                RamBudget.check(ramBytes() + bytes);
                backend = new RamBackend(bytes);
            } catch (IllegalArgumentException e) {
                throw new Refusal(Status.NAMESPACE_INSUFFICIENT_CAPACITY, e.getMessage());
            }
        } else {
            String name = "ns" + nsid + "-" + ids.uuidText().substring(0, 8) + ".img";
            try {
                backend = new FileBackend(directory.resolve(name), bytes);
            } catch (IllegalArgumentException e) {
                LOG.log(System.Logger.Level.WARNING, "pool {0}: cannot create namespace file {1}: {2}", directory, name,
                        e.getMessage());
                throw new Refusal(Status.INTERNAL_ERROR, e.getMessage());
            }
            placement = new Placement(name, true);
            placements.put(nsid, placement);
        }
        Namespace ns = new Namespace(nsid, backend, lbaSize, ids, nmic);
        saveFailure = null;
        table.add(ns, false);
        if (saveFailure != null) {
            table.remove(nsid); // the manifest on disk is still the old one: so is the table now
            placements.remove(nsid);
            release(ns, placement);
            throw manifestFailed();
        }
        return nsid;
    }

    /** Namespace Management delete (§5.20.1) of one allocated NSID: detached first if attached. */
    public synchronized void delete(int nsid) throws Refusal {
        Namespace ns = table.allocated(nsid);
        if (ns == null) {
            throw new Refusal(Status.INVALID_FIELD, "NSID " + nsid + " is not allocated");
        }
        boolean attached = table.isAttached(nsid);
        saveFailure = null;
        table.remove(nsid);
        if (saveFailure != null) {
            table.add(ns, attached);
            throw manifestFailed();
        }
        Placement placement = placements.remove(nsid);
        retirer.afterInFlight("ns" + nsid, ns.backend(), () -> release(ns, placement));
    }

    /** Namespace Management delete of NSID FFFFFFFFh: every allocated namespace. */
    public synchronized void deleteAll() throws Refusal {
        for (Namespace ns : table.allocatedList()) {
            delete(ns.nsid());
        }
    }

    /** Namespace Attachment (§5.22) of this controller: attach ({@code true}) or detach an allocated NSID. */
    public synchronized void attach(int nsid, boolean attach) throws Refusal {
        if (table.allocated(nsid) == null) {
            throw new Refusal(Status.INVALID_FIELD, "NSID " + nsid + " is not allocated");
        }
        if (table.isAttached(nsid) == attach) {
            throw new Refusal(attach ? Status.NAMESPACE_ALREADY_ATTACHED : Status.NAMESPACE_NOT_ATTACHED,
                    "NSID " + nsid + (attach ? " already attached" : " not attached"));
        }
        saveFailure = null;
        table.setAttached(nsid, attach);
        if (saveFailure != null) {
            table.setAttached(nsid, !attach);
            throw manifestFailed();
        }
    }

    // ------------------------------------------------------------------ the host's namespaces (control plane)

    /**
     * True if the host (the control plane's {@code namespace_add}, {@code _remove}, {@code _resize}) may change the
     * namespaces: only the default pool (no {@code pool=} option), whose capacity is by definition the sum of the
     * host's namespaces; a host change moves TNVMCAP with it and leaves UNVMCAP, the capacity the guest may create
     * namespaces from, as it was. An explicit {@code pool=} belongs to the guest's Namespace Management: its
     * capacity, table and manifest are never changed from outside (a host namespace in a directory pool would have
     * to survive a restart the manifest cannot promise for it).
     */
    public boolean hostManaged() {
        return hostManaged;
    }

    /** The lowest NSID not allocated, or 0 if all {@link NamespaceTable#maxNsid} are. */
    public synchronized int lowestFreeNsid() {
        for (int n = 1; n <= table.maxNsid(); n++) {
            if (table.allocated(n) == null) {
                return n;
            }
        }
        return 0;
    }

    /** Adds a host namespace, attached (the guest gets the notice); its NSID must be free. */
    public synchronized void addForHost(Namespace ns) throws Refusal {
        requireHostManaged();
        if (table.allocated(ns.nsid()) != null) {
            throw new Refusal(Status.NAMESPACE_IDENTIFIER_UNAVAILABLE, "NSID " + ns.nsid() + " is in use");
        }
        capacity += ns.bytes();
        table.add(ns, true);
    }

    /**
     * Removes namespace {@code nsid} for the host (the guest gets the notice) and returns it: the caller retires
     * its backend once nothing is in flight on it.
     */
    public synchronized Namespace removeForHost(int nsid) throws Refusal {
        requireHostManaged();
        Namespace ns = table.allocated(nsid);
        if (ns == null) {
            throw new Refusal(Status.INVALID_FIELD, "NSID " + nsid + " is not allocated");
        }
        table.remove(nsid);
        capacity -= ns.bytes();
        return ns;
    }

    /** Puts {@code resized} in place of the namespace of its NSID, unless that changed meanwhile ({@code old}). */
    public synchronized void replaceForHost(Namespace old, Namespace resized) throws Refusal {
        requireHostManaged();
        if (table.allocated(old.nsid()) != old) {
            throw new Refusal(Status.INVALID_FIELD, "namespace " + old.nsid() + " changed meanwhile (formatted or deleted)");
        }
        capacity += resized.bytes() - old.bytes();
        table.replace(resized);
    }

    private void requireHostManaged() throws Refusal {
        if (!hostManaged) {
            throw new Refusal(Status.INVALID_FIELD, "the namespaces of an explicit pool are managed by the guest");
        }
    }

    private Refusal manifestFailed() {
        LOG.log(System.Logger.Level.WARNING, "pool {0}: the change is undone", directory);
        return new Refusal(Status.INTERNAL_ERROR, "manifest not written");
    }

    /** The bytes all RAM namespaces hold (the {@link RamBudget} check of a new or grown one). */
    public synchronized long ramBytes() {
        long ram = 0;
        for (Namespace ns : table.allocatedList()) {
            if (ns.backend() instanceof RamBackend) {
                ram += ns.bytes();
            }
        }
        return ram;
    }

    /** Closes a removed namespace's backend and deletes its file if the pool created it. */
    private void release(Namespace ns, Placement placement) {
        ns.backend().close();
        if (placement != null && placement.owned()) {
            try {
                Files.deleteIfExists(directory.resolve(placement.path()));
            } catch (IOException e) {
                LOG.log(System.Logger.Level.WARNING, "pool {0}: deleted namespace {1}: file {2} not removed: {3}",
                        directory, ns.nsid(), placement.path(), e.toString());
            }
        }
    }

    /** The inventory listener: the whole table to the manifest (called under the table's lock). */
    private void save(int changedNsid) {
        try {
            manifest.write(entries());
        } catch (IOException | RuntimeException e) {
            // A change made through this pool is undone by its caller; one made elsewhere (Format NVM's replace)
            // is written with the next change that succeeds, and the old manifest stays valid meanwhile.
            saveFailure = e instanceof IOException io ? io : new IOException(e);
            LOG.log(System.Logger.Level.WARNING, "pool {0}: manifest not written after a change of namespace {1}: {2}",
                    directory, changedNsid, e.toString());
        }
    }

    private List<PoolManifest.Entry> entries() {
        List<PoolManifest.Entry> entries = new ArrayList<>();
        for (Namespace ns : table.allocatedList()) {
            Placement p = placements.get(ns.nsid());
            if (p == null) {
                continue; // being created: recorded once its placement is known (never the case: put first)
            }
            entries.add(new PoolManifest.Entry(ns.nsid(), ns.bytes(), 1 << ns.lbaShift(), table.isAttached(ns.nsid()),
                    ns.nmic(), p.owned(), ns.ids(), p.path()));
        }
        return entries;
    }

    /** Releases the directory lock (the controller closes the backends). */
    @Override
    public void close() {
        closeQuietly(lockChannel); // closing the channel releases the lock
    }

    static void closeQuietly(FileChannel c) {
        if (c != null) {
            try {
                c.close();
            } catch (IOException ignored) {
                // nothing to do on close
            }
        }
    }
}
