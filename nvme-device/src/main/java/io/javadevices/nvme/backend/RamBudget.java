package io.javadevices.nvme.backend;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The start-up check that the {@code ram:} namespaces of a configuration can be held at all: their total
 * size must not exceed the host's {@code MemTotal + SwapTotal} ({@code /proc/meminfo}). A RAM namespace is
 * sparse ({@link RamBackend}) and its mapping is {@code MAP_NORESERVE}, so nothing is reserved up front and
 * a guest that writes past what the host can hold is OOM-killed, server and all; a configuration that
 * could only end that way is refused before a guest is told it has the capacity.
 *
 * <p>{@code MemAvailable} is deliberately not the limit: it is a snapshot of a moving quantity (page cache,
 * other processes), a sparse disk is rarely filled, and a test or a scratch guest legitimately sizes a RAM
 * disk above what is free right now. The check refuses only what is impossible on this host, not what is
 * merely risky at this moment. Where {@code /proc/meminfo} cannot be read (not Linux) there is no check.
 */
public final class RamBudget {
    private static final Path MEMINFO = Path.of("/proc/meminfo");

    private RamBudget() {
    }

    /** Throws {@link IllegalArgumentException} if {@code ramBytes} of RAM namespaces cannot fit this host. */
    public static void check(long ramBytes) {
        String meminfo;
        try {
            meminfo = Files.readString(MEMINFO);
        } catch (IOException | SecurityException e) {
            return;
        }
        check(ramBytes, meminfo);
    }

    /** The rule on a given {@code /proc/meminfo} text. */
    static void check(long ramBytes, String meminfo) {
        long limit = kib(meminfo, "MemTotal") + kib(meminfo, "SwapTotal");
        if (limit > 0 && ramBytes > limit) {
            throw new IllegalArgumentException("ram: namespaces total " + ramBytes + " bytes, more than this host's RAM + swap ("
                    + limit + " bytes, MemTotal + SwapTotal in /proc/meminfo): a guest filling them would get the server"
                    + " OOM-killed; use smaller ram: namespaces or a file: namespace");
        }
    }

    /** A {@code Name:   123 kB} line in bytes, 0 if absent or malformed. */
    static long kib(String meminfo, String name) {
        for (String line : meminfo.split("\n")) {
            if (line.startsWith(name + ":")) {
                String[] words = line.substring(name.length() + 1).trim().split("\\s+");
                try {
                    return Math.multiplyExact(Long.parseLong(words[0]), 1024L);
                } catch (NumberFormatException | ArithmeticException e) {
                    return 0;
                }
            }
        }
        return 0;
    }
}
