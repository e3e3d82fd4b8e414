package io.javadevices.nvme;

import io.javadevices.nvme.backend.BlockBackend;
import io.javadevices.nvme.backend.FileBackend;
import io.javadevices.nvme.backend.NullBackend;
import io.javadevices.nvme.backend.RamBackend;
import io.javadevices.nvme.backend.RamBudget;
import io.javadevices.nvme.nbd.NbdBackend;
import io.javadevices.nvme.nbd.NbdUri;
import io.javadevices.nvme.pool.PoolSpec;
import io.javadevices.nvme.queue.IdlePolicy;
import io.javadevices.pci.ByteSizes;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Parsed plugin options (see {@link #HELP}). Unknown keys and malformed values throw
 * {@link IllegalArgumentException} naming the option.
 *
 * @param namespaces namespace specs in NSID order (NSID = index + 1)
 * @param queues     maximum I/O queue pairs
 * @param dbbuf      Doorbell Buffer Config offered (OACS bit 8)
 * @param mqes       CAP.MQES (maximum queue entries, 0-based)
 * @param mdts       Identify MDTS (max transfer = 2^mdts pages; 0 = unlimited is not allowed here)
 * @param pollMicros spin window after busy batches (shadow or polled doorbells)
 * @param polledDoorbells BAR0's doorbell page is memory the guest writes directly and the workers poll
 *                        ({@code doorbells=polled}); false = every doorbell write is an MMIO callback
 * @param napMicros  sleep between looks at an idle queue's tail (polled doorbells; DBBUF nap window)
 * @param napWindowMicros with DBBUF: how long to nap after a queue went idle before re-arming EventIdx
 * @param stopTimeoutMillis how long a reset, shutdown or Delete I/O SQ waits for a worker stuck in its
 *                          backend before reporting CSTS.CFS; CAP.TO covers it
 * @param parkDbbufMicros   safety-net park of an idle worker whose queue has a shadow doorbell
 * @param parkTrappedMicros safety-net park of an idle worker with trapped (MMIO) doorbells
 * @param pool       the NVM capacity pool ({@code pool=}), or null: a RAM pool the size of the namespaces
 * @param maxNamespaces Identify NN and MNAN: NSIDs 1..this can be allocated
 * @param ioEngine   how I/O queues run asynchronous backends: {@code auto}, {@code io_uring} or {@code threads}
 * @param ioThreads  threads per I/O queue of the {@code threads} engine
 */
public record NvmeOptions(List<NamespaceSpec> namespaces, int queues, boolean dbbuf, String serial, String model,
                          int mqes, int mdts, int pollMicros, boolean polledDoorbells, int napMicros,
                          int napWindowMicros, int stopTimeoutMillis, int parkDbbufMicros,
                          int parkTrappedMicros, PoolSpec pool, int maxNamespaces, String ioEngine,
                          int ioThreads) {

    public static final String HELP = String.join("\n",
            "namespaces=LIST  comma-separated ram:SIZE | null:SIZE | file:PATH[:SIZE][?direct=on], each optionally @4096 for 4 KiB LBAs (default 512); SIZE like 64M, 1G or bytes (default ram:1G; none with a pool=)",
            "                 NSIDs 1, 2, ... in order; they come out of the pool (their sizes are allocated capacity)",
            "                 ram: is sparse anonymous memory outside the Java heap and direct-memory limit; all ram: sizes together",
            "                 must fit the host's RAM + swap. file: images are locked like QEMU locks them (a second server or a",
            "                 QEMU writer is refused); a block device must hold SIZE; Flush, FUA writes and a disabled write cache",
            "                 fdatasync the file; Deallocate punches holes (reads zero), Write Zeroes is FALLOC_FL_ZERO_RANGE",
            "                 (BLKDISCARD / BLKZEROOUT on a block device). ?direct=on opens it with O_DIRECT (no host page",
            "                 cache; unaligned guest buffers are bounced), e.g. file:/img/a.raw:1G?direct=on@4096",
            "                 nbd://HOST[:PORT]/EXPORT or nbd+unix:///EXPORT?socket=PATH (NBD URIs, percent-encoded) is an NBD",
            "                 export (qemu-nbd, qemu-storage-daemon, nbdkit): its size is the export's (no SIZE), read-only",
            "                 exports are write protected, a lost server gives Namespace Not Ready until it is back",
            "queues=N         maximum I/O queue pairs, 1..511 (default 4)",
            "dbbuf=on|off     Doorbell Buffer Config / shadow doorbells (default on; off clears OACS bit 8)",
            "serial=TEXT      serial number, at most 20 ASCII characters (default JD0001)",
            "model=TEXT       model number, at most 40 ASCII characters (default Java NVMe Controller)",
            "mqes=N           CAP.MQES, maximum queue entries minus one, 1..65535 (default 1023)",
            "mdts=N           maximum data transfer size as a power of two of 4 KiB pages, 1..15 (default 7 = 512 KiB)",
            "poll-us=N        when a queue goes empty after a single command (QD1-like traffic), spin this many",
            "                 microseconds for the next one before sleeping; not used with doorbells=polled;",
            "                 0..100000 (default 300)",
            "doorbells=trapped|polled  trapped (default): doorbell writes reach the device as MMIO writes; polled: the",
            "                 doorbell page is mapped into the guest (vfio-user sparse mmap) and workers poll it: no",
            "                 doorbell exits, at the cost of CPU",
            "nap-us=N         idle I/O workers sleep N microseconds between looks at the queue's tail: with dbbuf",
            "                 after a deep busy period, within nap-window-us; always with doorbells=polled;",
            "                 1..10000 (default 500, 200 with doorbells=polled; the kernel adds up to 50 us of slack)",
            "nap-window-us=N  with dbbuf: nap this long after a queue went idle before re-arming EventIdx (the guest",
            "                 rings no doorbell meanwhile), 0..1000000 (default 2000; 0 = re-arm at once)",
            "stop-timeout-ms=N  a reset, shutdown or Delete I/O SQ waits this long for a queue worker stuck in its",
            "                 backend, then reports controller fatal status (CSTS.CFS) and keeps waiting; CAP.TO",
            "                 covers it; 1..120000 (default 7500)",
            "park-dbbuf-us=N  an idle worker with a shadow doorbell (dbbuf) re-checks its queue after this long even",
            "                 without a doorbell; a safety net, correctness never depends on it; 1..10000000 (default 2000)",
            "park-trapped-us=N  the same for trapped doorbells, and the re-check interval while Bus Master Enable is",
            "                 clear; 1..10000000 (default 50000)",
            "pool=ram:SIZE | dir:PATH:SIZE  the NVM capacity guests create namespaces from (Namespace Management;",
            "                 Identify TNVMCAP = SIZE, UNVMCAP = what no namespace holds). ram: sparse memory, gone with the",
            "                 process, within RAM + swap. dir: a directory (created if missing, locked) where each namespace is a",
            "                 sparse file and pool.manifest keeps the namespace table, identifiers, formats and attachment, so a",
            "                 restart presents the same namespaces; its command-line namespaces must be file: ones and only",
            "                 seed an empty pool (once the manifest exists it is the table). Default: a RAM pool exactly the",
            "                 size of the namespaces (UNVMCAP 0)",
            "max-namespaces=N  Identify NN and MNAN, the NSIDs 1..N namespaces can have (from the command line, the guest's",
            "                 Namespace Management or the control plane's namespace_add), 1..1024 (default 32, or the number",
            "                 of namespaces if more)",
            "io-engine=auto|io_uring|threads|sync  how each I/O queue keeps many commands in flight on file (and other",
            "                 asynchronous) backends: io_uring (one ring per queue), threads (a few threads per queue running",
            "                 the backend's blocking calls), or auto (default): io_uring if the kernel lets it be set up, else",
            "                 threads; the choice and the reason for a fallback are logged at start. ram: and null: namespaces",
            "                 are always served directly by the queue's worker (a memory copy gains nothing from a hand-off);",
            "                 sync: no engine, one command at a time per queue, each such queue on a thread of its own",
            "                 instead of the shared polling threads (the old design, for comparison)",
            "io-threads=N     threads per I/O queue of the threads engine, 1..64 (default 4)");

    private static final Set<String> KEYS = Set.of("namespaces", "queues", "dbbuf", "serial", "model", "mqes", "mdts", "poll-us",
            "doorbells", "nap-us", "nap-window-us",
            "stop-timeout-ms", "park-dbbuf-us", "park-trapped-us", "pool", "max-namespaces", "io-engine", "io-threads");

    /** One namespace: backend kind, size (0 = from the file), path for files, LBA size, O_DIRECT for files. */
    public record NamespaceSpec(String kind, long size, String path, int lbaSize, boolean direct) {
        /** A spec without O_DIRECT. */
        public NamespaceSpec(String kind, long size, String path, int lbaSize) {
            this(kind, size, path, lbaSize, false);
        }

        public BlockBackend open() {
            return switch (kind) {
                case "ram" -> new RamBackend(size);
                case "null" -> new NullBackend(size);
                case "file" -> new FileBackend(Path.of(path), size, direct);
                case "nbd" -> openNbd();
                default -> throw new IllegalArgumentException("namespace kind " + kind);
            };
        }

        /** An NBD export, refused unless its size is a whole number of LBAs the server accepts as requests. */
        private BlockBackend openNbd() {
            NbdBackend nbd = NbdBackend.open(path);
            String problem = nbd.size() % lbaSize != 0 ? "its " + nbd.size() + " bytes are not a multiple of the LBA size " + lbaSize
                    : nbd.minimumBlockSize() > lbaSize ? "the server's minimum block size " + nbd.minimumBlockSize()
                    + " exceeds the LBA size " + lbaSize + " (use @4096)" : null;
            if (problem != null) {
                nbd.close();
                throw new IllegalArgumentException("namespace " + path + ": " + problem);
            }
            return nbd;
        }
    }

    /** How the I/O queue workers wait for work ({@link IdlePolicy.Settings#admin} for the admin queue). */
    public IdlePolicy.Settings idle() {
        return new IdlePolicy.Settings(pollMicros, napMicros, napWindowMicros, parkDbbufMicros, parkTrappedMicros);
    }

    public static NvmeOptions defaults() {
        return parse(Map.of());
    }

    public static NvmeOptions parse(Map<String, String> options) {
        for (String key : options.keySet()) {
            if (!KEYS.contains(key)) {
                throw new IllegalArgumentException("unknown nvme option '" + key + "' (known: " + KEYS + ")");
            }
        }
        PoolSpec pool = options.containsKey("pool") ? PoolSpec.parse(options.get("pool")) : null;
        List<NamespaceSpec> namespaces = options.containsKey("namespaces") ? parseNamespaces(options.get("namespaces"))
                : pool == null ? parseNamespaces("ram:1G") : List.of();
        // 32 NSIDs by default (as SPDK's subsystems): room for the control plane's namespace_add and for the guest's
        // Namespace Management; Linux scans the active list (Identify CNS 02h), never all NN NSIDs one by one.
        int maxNamespaces = intOption(options, "max-namespaces", Math.max(32, namespaces.size()), 1, 1024);
        if (maxNamespaces < namespaces.size()) {
            throw new IllegalArgumentException("option max-namespaces " + maxNamespaces + " is below the "
                    + namespaces.size() + " namespaces given");
        }
        RamBudget.check(namespaces.stream().filter(ns -> ns.kind().equals("ram")).mapToLong(NamespaceSpec::size)
                .reduce(0, (a, b) -> a > Long.MAX_VALUE - b ? Long.MAX_VALUE : a + b)); // saturating: no overflow to "small"
        int queues = intOption(options, "queues", 4, 1, 511);
        String db = options.getOrDefault("dbbuf", "on").toLowerCase(Locale.ROOT);
        if (!db.equals("on") && !db.equals("off")) {
            throw new IllegalArgumentException("option dbbuf must be on or off: '" + db + "'");
        }
        String serial = ascii(options.getOrDefault("serial", "JD0001"), "serial", 20);
        String model = ascii(options.getOrDefault("model", "Java NVMe Controller"), "model", 40);
        int mqes = intOption(options, "mqes", 1023, 1, 65535);
        int mdts = intOption(options, "mdts", 7, 1, 15);
        String doorbells = options.getOrDefault("doorbells", "trapped").toLowerCase(Locale.ROOT);
        if (!doorbells.equals("trapped") && !doorbells.equals("polled")) {
            throw new IllegalArgumentException("option doorbells must be trapped or polled: '" + doorbells + "'");
        }
        boolean polled = doorbells.equals("polled");
        // The spin runs only after single-command busy periods (QD1-like) and never with polled doorbells:
        // spinning after every busy period takes the CPU the vCPUs need on a small host (the README's benchmark
        // shows the effect). The default spin is meant to cover a TCG guest's turnaround between two QD1 commands.
        int poll = intOption(options, "poll-us", 300, 0, 100_000);
        // With DBBUF, napping through a short window after a queue goes idle keeps EventIdx un-armed, so the guest
        // rings fewer MMIO doorbells than when it is re-armed at once. With polled doorbells each look at the
        // page costs CPU the vCPUs need, so looks are not made much more often than the default (README benchmark).
        int nap = intOption(options, "nap-us", polled ? 200 : 500, 1, 10_000);
        int napWindow = intOption(options, "nap-window-us", 2000, 0, 1_000_000);
        // 7.5 s = CAP.TO 0xF, what this controller always reported; Linux waits (CAP.TO + 1) × 500 ms for RDY.
        int stopTimeout = intOption(options, "stop-timeout-ms", 7500, 1, 120_000);
        // Safety-net parks (IdlePolicy): short with DBBUF, where a host that writes only the shadow slot (not
        // permitted, but seen) is then picked up within it; tests raise both to prove no wake-up is lost.
        int parkDbbuf = intOption(options, "park-dbbuf-us", 2000, 1, 10_000_000);
        int parkTrapped = intOption(options, "park-trapped-us", 50_000, 1, 10_000_000);
        String ioEngine = options.getOrDefault("io-engine", "auto").trim().toLowerCase(Locale.ROOT);
        if (!List.of("auto", "io_uring", "threads", "sync").contains(ioEngine)) {
            throw new IllegalArgumentException("option io-engine must be auto, io_uring, threads or sync: '" + ioEngine + "'");
        }
        int ioThreads = intOption(options, "io-threads", 4, 1, 64);
        return new NvmeOptions(namespaces, queues, db.equals("on"), serial, model, mqes, mdts, poll, polled, nap,
                napWindow, stopTimeout, parkDbbuf, parkTrapped, pool, maxNamespaces, ioEngine, ioThreads);
    }

    private static String ascii(String value, String key, int max) {
        if (value.isEmpty() || value.length() > max || !value.chars().allMatch(c -> c >= 0x20 && c < 0x7F)) {
            throw new IllegalArgumentException("option " + key + " must be 1.." + max + " printable ASCII characters: '" + value + "'");
        }
        return value;
    }

    private static int intOption(Map<String, String> options, String key, int dflt, int min, int max) {
        String v = options.get(key);
        if (v == null) {
            return dflt;
        }
        try {
            int n = Integer.parseInt(v.trim());
            if (n < min || n > max) {
                throw new IllegalArgumentException("option " + key + " must be in " + min + ".." + max + ": " + v);
            }
            return n;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("option " + key + " is not a number: '" + v + "'");
        }
    }

    static List<NamespaceSpec> parseNamespaces(String list) {
        List<NamespaceSpec> specs = new ArrayList<>();
        for (String raw : list.split(",")) {
            String item = raw.trim();
            if (item.isEmpty()) {
                throw new IllegalArgumentException("option namespaces has an empty entry: '" + list + "'");
            }
            if (NbdUri.looksLikeNbd(item)) {
                specs.add(parseNbd(item));
                continue;
            }
            int lbaSize = 512;
            int at = item.lastIndexOf('@');
            if (at >= 0) {
                String lba = item.substring(at + 1);
                if (!lba.equals("512") && !lba.equals("4096")) {
                    throw new IllegalArgumentException("namespace LBA size must be @512 or @4096: '" + item + "'");
                }
                lbaSize = Integer.parseInt(lba);
                item = item.substring(0, at);
            }
            int colon = item.indexOf(':');
            if (colon < 0) {
                throw new IllegalArgumentException("namespace must be ram:SIZE, null:SIZE or file:PATH[:SIZE]: '" + raw.trim() + "'");
            }
            String kind = item.substring(0, colon);
            String rest = item.substring(colon + 1);
            NamespaceSpec spec;
            switch (kind) {
                case "ram", "null" -> spec = new NamespaceSpec(kind, parseSize(rest, raw), null, lbaSize);
                case "file" -> {
                    boolean direct = false;
                    int query = rest.lastIndexOf('?');
                    if (query >= 0) {
                        direct = fileQuery(rest.substring(query + 1), raw);
                        rest = rest.substring(0, query);
                    }
                    String path = rest;
                    long size = 0;
                    int last = rest.lastIndexOf(':');
                    if (last > 0) {
                        path = rest.substring(0, last);
                        size = parseSize(rest.substring(last + 1), raw);
                    }
                    if (path.isEmpty()) {
                        throw new IllegalArgumentException("namespace file needs a path: '" + raw.trim() + "'");
                    }
                    spec = new NamespaceSpec(kind, size, path, lbaSize, direct);
                }
                default -> throw new IllegalArgumentException("unknown namespace kind '" + kind + "' in '" + raw.trim() + "' (ram, null, file, nbd:// or nbd+unix://)");
            }
            if (spec.size() != 0 && (spec.size() % lbaSize != 0 || spec.size() < lbaSize)) {
                throw new IllegalArgumentException("namespace size must be a positive multiple of the LBA size " + lbaSize + ": '" + raw.trim() + "'");
            }
            specs.add(spec);
        }
        if (specs.size() > 256) {
            throw new IllegalArgumentException("at most 256 namespaces");
        }
        return List.copyOf(specs);
    }

    /** The {@code ?KEY=VALUE&...} of a file namespace (after PATH[:SIZE], before @LBA): true if direct=on. */
    private static boolean fileQuery(String query, String raw) {
        boolean direct = false;
        for (String pair : query.split("&", -1)) {
            int eq = pair.indexOf('=');
            String key = eq < 0 ? pair : pair.substring(0, eq);
            String value = eq < 0 ? "" : pair.substring(eq + 1).toLowerCase(Locale.ROOT);
            if (!key.equals("direct")) {
                throw new IllegalArgumentException("unknown file namespace option '" + key + "' in '" + raw.trim()
                        + "' (known: direct=on|off)");
            }
            if (!value.equals("on") && !value.equals("off")) {
                throw new IllegalArgumentException("file namespace option direct must be on or off: '" + raw.trim() + "'");
            }
            direct = value.equals("on");
        }
        return direct;
    }

    /**
     * {@code nbd://...} or {@code nbd+unix://...}, optionally {@code @512}/{@code @4096} last; the size comes from
     * the export, so a trailing {@code :SIZE} is refused (a colon in an export name is written {@code %3A}).
     */
    private static NamespaceSpec parseNbd(String item) {
        int lbaSize = 512;
        java.util.regex.Matcher lba = java.util.regex.Pattern.compile("@([0-9]+)$").matcher(item);
        String uri = item;
        if (lba.find()) {
            if (!lba.group(1).equals("512") && !lba.group(1).equals("4096")) {
                throw new IllegalArgumentException("namespace LBA size must be @512 or @4096: '" + item + "'");
            }
            lbaSize = Integer.parseInt(lba.group(1));
            uri = item.substring(0, lba.start());
        }
        int path = uri.indexOf('/', uri.indexOf("://") + 3); // a colon before it is the port's
        int colon = uri.lastIndexOf(':');
        if (path >= 0 && colon > path && sizeLike(uri.substring(colon + 1))) {
            throw new IllegalArgumentException("namespace '" + item + "': an NBD namespace takes its size from the"
                    + " export; drop ':" + uri.substring(colon + 1) + "' (write a ':' in the export name as %3A)");
        }
        NbdUri.parse(uri); // the URI's own errors, at parse time
        return new NamespaceSpec("nbd", 0, uri, lbaSize);
    }

    private static boolean sizeLike(String text) {
        try {
            ByteSizes.parse(text);
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    /** A namespace size in {@link ByteSizes} grammar (64M, 1G, 64MiB, bytes); 0 is not a disk. */
    public static long parseSize(String text, String context) {
        long size;
        try {
            size = ByteSizes.parse(text);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("bad size '" + text + "' in namespace '" + context.trim() + "'");
        }
        if (size == 0) {
            throw new IllegalArgumentException("bad size '" + text + "' in namespace '" + context.trim() + "'");
        }
        return size;
    }
}
