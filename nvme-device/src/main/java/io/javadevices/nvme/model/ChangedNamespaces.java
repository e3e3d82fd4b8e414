package io.javadevices.nvme.model;

import java.util.TreeMap;

/**
 * The Changed Namespace List (NVMe 1.4 §5.14.1.4): the NSIDs whose Identify Namespace data or attachment
 * changed since the host last read log page 04h. A read reports them ascending, up to {@link #MAX_ENTRIES};
 * more than that are reported as the single entry {@link #OVERFLOW} ("rescan everything").
 *
 * <p>Changes come from whichever thread changes the {@link NamespaceTable}; the log is read on the admin
 * worker. Both are rare (never on an I/O path), so one lock guards the list. Each change carries a sequence
 * number, so that clearing after a read removes exactly what that read reported: an NSID that changes again
 * while the log page is being transferred stays in the list for the next read.
 */
public final class ChangedNamespaces {
    /** The log page holds 1024 NSIDs (4096 bytes). */
    public static final int MAX_ENTRIES = 1024;
    /** The first and only entry when more than {@link #MAX_ENTRIES} namespaces changed. */
    public static final int OVERFLOW = 0xFFFF_FFFF;

    /** What one read of the log reports: the entries, and the last change they include. */
    public record Snapshot(int[] nsids, long upTo) {
    }

    /** NSID (compared unsigned) → sequence number of its latest change; guarded by this. */
    private final TreeMap<Integer, Long> changed = new TreeMap<>(Integer::compareUnsigned);
    private long sequence;

    /** Records that namespace {@code nsid} changed (appeared, went, or changed format). */
    public synchronized void add(int nsid) {
        changed.put(nsid, ++sequence);
    }

    public synchronized boolean isEmpty() {
        return changed.isEmpty();
    }

    /** The entries a read reports now: ascending NSIDs, or {@link #OVERFLOW} alone. */
    public synchronized Snapshot snapshot() {
        int[] nsids;
        if (changed.size() > MAX_ENTRIES) {
            nsids = new int[] {OVERFLOW};
        } else {
            nsids = changed.keySet().stream().mapToInt(Integer::intValue).toArray();
        }
        return new Snapshot(nsids, sequence);
    }

    /** The host read the log (RAE = 0): forgets the changes up to {@code upTo}, keeps later ones. */
    public synchronized void clear(long upTo) {
        changed.values().removeIf(s -> s <= upTo);
    }

    /** How many NSIDs are recorded now. */
    public synchronized int size() {
        return changed.size();
    }

    @Override
    public synchronized String toString() {
        return "ChangedNamespaces" + changed.keySet();
    }
}
