package io.javadevices.nvme.pool;

import io.javadevices.nvme.backend.BlockBackend;
import io.javadevices.nvme.backend.FileBackend;
import io.javadevices.nvme.backend.RamBudget;
import io.javadevices.nvme.model.Namespace;
import io.javadevices.nvme.model.NamespaceIds;
import io.javadevices.nvme.model.NamespaceTable;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Start-up of an {@link NvmPool} (the rules are in its class comment): the default or a RAM pool from the
 * command-line namespaces; a directory pool locked, then loaded from its manifest, or seeded from the
 * command line when it has none, and checked against its size.
 */
final class PoolOpening {
    private static final System.Logger LOG = System.getLogger(NvmPool.class.getName());
    private static final String LOCK_FILE = "pool.lock";
    /** The names {@link NvmPool#create} gives its files: {@code nsNSID-XXXXXXXX.img}. */
    private static final Pattern POOL_FILE = Pattern.compile("ns[0-9]+-[0-9a-f]{8}\\.img");

    private PoolOpening() {
    }

    /** See {@link NvmPool#open}. */
    static NvmPool open(PoolSpec spec, List<NvmPool.Seed> seeds, String serial, int maxNsid) {
        if (seeds.size() > maxNsid) {
            throw new IllegalArgumentException(seeds.size() + " namespaces but max-namespaces " + maxNsid);
        }
        NamespaceTable table = new NamespaceTable(maxNsid);
        if (spec == null || !spec.persistent()) {
            if (spec != null) {
                RamBudget.check(spec.capacity()); // before anything is opened: nothing to close on refusal
            }
            List<Namespace> opened = openSeeds(seeds, serial);
            long sum = opened.stream().mapToLong(Namespace::bytes).sum();
            if (spec != null) {
                if (sum > spec.capacity()) {
                    opened.forEach(ns -> ns.backend().close());
                    throw new IllegalArgumentException("the namespaces total " + sum + " bytes, more than the pool " + spec);
                }
            }
            opened.forEach(ns -> table.add(ns, true));
            return new NvmPool(null, spec == null ? sum : spec.capacity(), spec == null, table, null, null);
        }
        return openDirectory(spec, seeds, serial, table);
    }

    private static List<Namespace> openSeeds(List<NvmPool.Seed> seeds, String serial) {
        List<Namespace> opened = new ArrayList<>();
        try {
            for (NvmPool.Seed seed : seeds) {
                int nsid = opened.size() + 1;
                opened.add(new Namespace(nsid, seed.open().get(), seed.lbaSize(), NamespaceIds.derived(serial, nsid), 0));
            }
        } catch (RuntimeException e) {
            opened.forEach(ns -> ns.backend().close());
            throw e;
        }
        return opened;
    }

    private static NvmPool openDirectory(PoolSpec spec, List<NvmPool.Seed> seeds, String serial, NamespaceTable table) {
        Path dir = spec.directory().toAbsolutePath().normalize();
        FileChannel lockChannel = null;
        FileLock lock = null;
        NvmPool pool = null;
        try {
            Files.createDirectories(dir);
            lockChannel = FileChannel.open(dir.resolve(LOCK_FILE), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
            try {
                lock = lockChannel.tryLock();
            } catch (OverlappingFileLockException sameProcess) {
                lock = null;
            }
            if (lock == null) {
                throw new IllegalArgumentException("pool directory " + dir + " is in use by another server");
            }
            pool = new NvmPool(dir, spec.capacity(), table, lockChannel, lock);
            pool.manifest().removeStaleTemporary();
            if (pool.manifest().exists()) {
                load(pool, table, seeds);
            } else {
                seed(pool, table, seeds, serial);
            }
            long used = pool.allocatedBytes();
            if (used > spec.capacity()) {
                throw new IllegalArgumentException("the namespaces of pool " + dir + " total " + used
                        + " bytes, more than its size " + spec.capacity());
            }
            pool.recordChanges();
            return pool;
        } catch (IOException | RuntimeException e) {
            if (pool != null) {
                table.allocatedList().forEach(ns -> ns.backend().close());
                pool.close();
            } else {
                NvmPool.closeQuietly(lockChannel);
            }
            if (e instanceof IllegalArgumentException iae) {
                throw iae;
            }
            throw new IllegalArgumentException("pool directory " + dir + " cannot be used: " + e, e);
        }
    }

    /** The table from the manifest; every file must be there with its recorded size. */
    private static void load(NvmPool pool, NamespaceTable table, List<NvmPool.Seed> seeds) {
        Path directory = pool.directory();
        PoolManifest manifest = pool.manifest();
        List<PoolManifest.Entry> entries = manifest.read();
        if (!seeds.isEmpty()) {
            LOG.log(System.Logger.Level.INFO, "pool {0}: using the {1} namespaces of its manifest; command-line"
                    + " namespaces only seed an empty pool", directory, entries.size());
        }
        for (PoolManifest.Entry e : entries) {
            if (e.nsid() > table.maxNsid()) {
                throw new IllegalArgumentException("pool manifest " + manifest.file() + " holds NSID " + e.nsid()
                        + ", beyond max-namespaces " + table.maxNsid());
            }
            Path file = directory.resolve(e.path());
            if (!Files.exists(file)) {
                throw new IllegalArgumentException("pool manifest " + manifest.file() + ": the file " + file
                        + " of namespace " + e.nsid() + " is missing; refusing to start without it");
            }
            BlockBackend backend = new FileBackend(file, e.bytes());
            if (backend.size() != e.bytes()) {
                backend.close();
                throw new IllegalArgumentException("pool manifest " + manifest.file() + ": namespace " + e.nsid()
                        + " should be " + e.bytes() + " bytes, its file " + file + " holds " + backend.size());
            }
            pool.place(e.nsid(), e.path(), e.owned());
            table.add(new Namespace(e.nsid(), backend, e.lbaSize(), e.ids(), e.nmic()), e.attached());
        }
        removeOrphans(directory, entries);
    }

    /**
     * Pool files no manifest entry names: a create that crashed before its manifest was written (never
     * acknowledged to the guest), or a deleted namespace whose file removal was cut short (the manifest already
     * said it was gone). Only names the pool itself gives ({@link NvmPool#create}) are touched.
     */
    private static void removeOrphans(Path directory, List<PoolManifest.Entry> entries) {
        Set<String> owned = new HashSet<>();
        for (PoolManifest.Entry e : entries) {
            if (e.owned()) {
                owned.add(e.path());
            }
        }
        try (DirectoryStream<Path> files = Files.newDirectoryStream(directory, "ns*-*.img")) {
            for (Path f : files) {
                String name = f.getFileName().toString();
                if (POOL_FILE.matcher(name).matches() && !owned.contains(name)) {
                    Files.delete(f);
                    LOG.log(System.Logger.Level.INFO, "pool {0}: removed {1}, a file no namespace owns", directory, name);
                }
            }
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "pool {0}: orphaned files not removed: {1}", directory, e.toString());
        }
    }

    /** A new pool: the command-line namespaces, which must be files. */
    private static void seed(NvmPool pool, NamespaceTable table, List<NvmPool.Seed> seeds, String serial) {
        Path directory = pool.directory();
        for (NvmPool.Seed s : seeds) {
            if (s.file() == null) {
                throw new IllegalArgumentException("a directory pool keeps its namespaces across restarts: its"
                        + " command-line namespaces must be file: namespaces (or use pool=ram:SIZE)");
            }
        }
        List<Namespace> opened = openSeeds(seeds, serial);
        for (int i = 0; i < opened.size(); i++) {
            Path file = seeds.get(i).file().toAbsolutePath().normalize();
            String recorded = file.startsWith(directory) ? directory.relativize(file).toString() : file.toString();
            pool.place(i + 1, recorded, false);
            table.add(opened.get(i), true);
        }
    }
}
