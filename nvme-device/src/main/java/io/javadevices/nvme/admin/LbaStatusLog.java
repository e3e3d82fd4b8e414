package io.javadevices.nvme.admin;

import io.javadevices.nvme.model.Namespace;
import io.javadevices.nvme.model.UncorrectableBlocks;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

import static io.javadevices.pci.LittleEndian.INT;
import static io.javadevices.pci.LittleEndian.LONG;
import static io.javadevices.pci.LittleEndian.SHORT;

/**
 * LBA Status Information log (Get Log Page 0Eh, NVMe 1.4 §5.14.1.14; libnvme struct nvme_lba_status_log): the
 * tracked potentially unrecoverable LBAs of each namespace, which here are the blocks Write Uncorrectable
 * marked. Header (16 bytes): LSLPLEN (used length), NLSLNE (namespace elements), ESTULB (marked blocks, all
 * namespaces), LSGC (generation counter: changes whenever a mark changes). Then one element per namespace with
 * marks: NEID (its NSID), NLRD (its range descriptors), RATYPE 11h (Get LBA Status with Action Type 11h returns
 * them), then 16-byte LBA Range Descriptors (RSLBA, RNLB).
 *
 * <p>The page is {@link #SIZE} bytes (the admin scratch buffer); a namespace whose ranges do not all fit lists
 * those that do (ESTULB still counts every marked block), and Get LBA Status walks the rest from any SLBA.
 */
final class LbaStatusLog {
    /** Log page size reported to Get Log Page: the used part is LSLPLEN, the rest reads zero. */
    static final int SIZE = 8192;
    static final int LID = 0x0E;
    /** Recommended Action Type: Get LBA Status "return tracked potentially unrecoverable LBAs". */
    static final int RATYPE_TRACKED = 0x11;
    private static final int HEADER = 16, ELEMENT = 16, DESCRIPTOR = 16;

    private LbaStatusLog() {
    }

    /** Renders the log into {@code page} (zeroed, at least {@link #SIZE} bytes). */
    static void render(List<Namespace> namespaces, MemorySegment page) {
        int at = HEADER;
        int elements = 0;
        long marked = 0;
        long generation = 0;
        boolean[] more = new boolean[1];
        for (Namespace ns : namespaces) {
            UncorrectableBlocks marks = ns.uncorrectable();
            generation += marks.generation();
            if (marks.isEmpty() || at + ELEMENT + DESCRIPTOR > SIZE) {
                marked += marks.blocks();
                continue;
            }
            marked += marks.blocks();
            long[] ranges = new long[2 * ((SIZE - at - ELEMENT) / DESCRIPTOR)];
            int n = marks.ranges(0, ns.blocks(), ranges, more);
            if (n == 0) {
                continue;
            }
            page.set(INT, at, ns.nsid());                           // NEID
            page.set(INT, at + 4, n);                               // NLRD
            page.set(ValueLayout.JAVA_BYTE, at + 8, (byte) RATYPE_TRACKED);
            at += ELEMENT;
            for (int i = 0; i < n; i++, at += DESCRIPTOR) {
                page.set(LONG, at, ranges[2 * i]);                  // RSLBA
                page.set(INT, at + 8, (int) Math.min(ranges[2 * i + 1], 0xFFFF_FFFFL)); // RNLB
            }
            elements++;
        }
        page.set(INT, 0, at);                                       // LSLPLEN
        page.set(INT, 4, elements);                                 // NLSLNE
        page.set(INT, 8, (int) Math.min(marked, 0xFFFF_FFFFL));     // ESTULB
        page.set(SHORT, 14, (short) generation);                    // LSGC
    }
}
