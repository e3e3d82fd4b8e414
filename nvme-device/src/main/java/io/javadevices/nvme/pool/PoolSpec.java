package io.javadevices.nvme.pool;

import io.javadevices.pci.ByteSizes;

import java.nio.file.Path;

/**
 * The {@code pool=} option: where this controller's NVM capacity comes from ({@link NvmPool}).
 *
 * <pre>
 * ram:SIZE        sparse anonymous memory, gone with the process (throwaway guests, tests)
 * dir:PATH:SIZE   a directory: each namespace a sparse file in it, the table in its manifest; SIZE is the total
 * </pre>
 *
 * SIZE as for namespaces (64M, 1G, 64MiB, bytes). Parsing only checks the grammar; the directory is opened
 * when the controller starts.
 *
 * @param directory null for a RAM pool
 * @param capacity  the pool's total size in bytes (Identify Controller TNVMCAP)
 */
public record PoolSpec(Path directory, long capacity) {
    public static final String GRAMMAR = "ram:SIZE | dir:PATH:SIZE";

    public boolean persistent() {
        return directory != null;
    }

    public static PoolSpec parse(String text) {
        String t = text.trim();
        int colon = t.indexOf(':');
        String kind = colon < 0 ? t : t.substring(0, colon);
        String rest = colon < 0 ? "" : t.substring(colon + 1);
        return switch (kind) {
            case "ram" -> new PoolSpec(null, size(rest, text));
            case "dir" -> {
                int last = rest.lastIndexOf(':');
                if (last <= 0) {
                    throw new IllegalArgumentException("pool dir needs a path and a size (dir:PATH:SIZE): '" + text + "'");
                }
                yield new PoolSpec(Path.of(rest.substring(0, last)), size(rest.substring(last + 1), text));
            }
            default -> throw new IllegalArgumentException("pool must be " + GRAMMAR + ": '" + text + "'");
        };
    }

    private static long size(String s, String context) {
        long size;
        try {
            size = ByteSizes.parse(s);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("bad size '" + s + "' in pool '" + context + "'");
        }
        if (size < 4096) {
            throw new IllegalArgumentException("pool size must be at least 4096 bytes: '" + context + "'");
        }
        return size;
    }

    @Override
    public String toString() {
        return persistent() ? "dir:" + directory + ":" + capacity : "ram:" + capacity;
    }
}
