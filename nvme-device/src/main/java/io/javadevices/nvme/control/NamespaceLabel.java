package io.javadevices.nvme.control;

import io.javadevices.nvme.model.Namespace;

/**
 * How {@code namespace_list} names a namespace: in the grammar it was (or could have been) given in, with its current
 * size where the grammar carries one ({@code ram:2G} after a grow of {@code ram:1G}; a file's or an export's size is
 * their own, reported as {@code size_bytes}).
 *
 * @param kind     {@code ram}, {@code null}, {@code file} or {@code nbd}
 * @param location see {@link NamespaceGrammar.Parsed#location}
 * @param lbaSize  the LBA size it was opened with (a later Format NVM shows in {@code block_size})
 */
record NamespaceLabel(String kind, String location, int lbaSize) {

    static NamespaceLabel of(NamespaceGrammar.Parsed p) {
        return new NamespaceLabel(p.kind(), p.location(), p.lbaSize());
    }

    /** The grammar text of {@code ns}, e.g. {@code ram:1G}, {@code file:/img/b.raw?direct=on@4096}. */
    String text(Namespace ns) {
        String base = switch (kind) {
            case "ram", "null" -> kind + ":" + size(ns.bytes());
            case "file" -> "file:" + location;
            default -> location;
        };
        int lba = 1 << ns.lbaShift();
        return lba == 512 ? base : base + "@" + lba;
    }

    /** {@code bytes} in the size grammar: the largest binary unit that divides it ({@code 1G}, {@code 1536M}, {@code 4608}). */
    static String size(long bytes) {
        String[] units = {"T", "G", "M", "K"};
        for (int i = 0; i < units.length; i++) {
            int shift = 40 - 10 * i;
            if (bytes > 0 && (bytes & ((1L << shift) - 1)) == 0) {
                return (bytes >>> shift) + units[i];
            }
        }
        return Long.toString(bytes);
    }
}
