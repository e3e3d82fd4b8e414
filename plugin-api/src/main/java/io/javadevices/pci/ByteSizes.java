package io.javadevices.pci;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The one grammar for byte sizes in plugin options and the server's command line, so that "64M" means
 * the same everywhere: digits, an optional binary suffix K, M, G or T (powers of 1024), optionally
 * followed by "B" or "iB", case-insensitive: {@code 4096}, {@code 64M}, {@code 64MiB}, {@code 1g}.
 * Whether 0 is allowed is the caller's decision (a limit may be 0, a disk may not).
 */
public final class ByteSizes {
    private static final Pattern SIZE = Pattern.compile("([0-9]{1,19})([KMGT]?)(i?B)?", Pattern.CASE_INSENSITIVE);

    private ByteSizes() {
    }

    /**
     * Parses a size.
     *
     * @throws IllegalArgumentException if the text is not a size or does not fit in a long
     */
    public static long parse(String text) {
        Matcher m = SIZE.matcher(text.trim());
        if (!m.matches()) {
            throw new IllegalArgumentException("not a size (e.g. 4096, 64M, 1G): '" + text + "'");
        }
        int shift = switch (m.group(2).toUpperCase(Locale.ROOT)) {
            case "K" -> 10;
            case "M" -> 20;
            case "G" -> 30;
            case "T" -> 40;
            default -> 0;
        };
        try {
            long value = Long.parseLong(m.group(1));
            if (value > (Long.MAX_VALUE >> shift)) {
                throw new NumberFormatException();
            }
            return value << shift;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("size too large: '" + text + "'");
        }
    }
}
