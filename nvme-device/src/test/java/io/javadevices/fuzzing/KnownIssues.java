package io.javadevices.fuzzing;

import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Bugs the fuzz targets recognise and that are already tracked, so that a fuzzing run can go on past them
 * instead of stopping at the first one. Each is tolerated only when its id is listed in the system property
 * {@value #PROPERTY} (comma-separated; the Maven build passes the root pom's {@code fuzz.known-issues}).
 * Without the property every hit is a failure, which is how the targets are run once the fixes are in:
 * {@code mvn verify -Dfuzz.known-issues=}.
 */
public final class KnownIssues {
    public static final String PROPERTY = "fuzz.known-issues";

    /** A non-eventfd (pipe, regular file, socket, memfd) accepted by SET_IRQS; interrupt writes can block. */
    public static final String NOT_AN_EVENTFD = "not-an-eventfd";
    /** A DMA memfd shrunk after DMA_MAP: the device's access raises InternalError (SIGBUS). */
    public static final String TRUNCATED_MEMFD = "truncated-memfd";
    /** Get Log Page with an offset (LPO) of 2^63 or more throws inside the controller. */
    public static final String LOG_PAGE_OFFSET = "log-page-offset";
    /** Completions for commands the host never submitted on a queue with shadow doorbells (DBBUF). */
    public static final String DBBUF_PHANTOM = "dbbuf-phantom";

    private static final Set<String> TOLERATED = Set.of(System.getProperty(PROPERTY, "").trim().split("\\s*,\\s*"));
    private static final Map<String, AtomicLong> HITS = new ConcurrentHashMap<>();

    private KnownIssues() {
    }

    /**
     * Records that known issue {@code id} happened. Returns if it is tolerated (printing the first hit and
     * every power of two), otherwise throws, so that the fuzzer reports the input.
     */
    public static void hit(String id, String detail) {
        if (!TOLERATED.contains(id)) {
            throw new AssertionError("known issue " + id + " (not tolerated, see -D" + PROPERTY + "): " + detail);
        }
        long n = HITS.computeIfAbsent(id, k -> new AtomicLong()).incrementAndGet();
        if (Long.bitCount(n) == 1) {
            System.out.printf("[fuzz] known issue %s tolerated (hit %d): %s%n", id, n, detail);
        }
    }

    /** Hits so far, by id. */
    public static Map<String, Long> hits() {
        Map<String, Long> m = new TreeMap<>();
        HITS.forEach((k, v) -> m.put(k, v.get()));
        return m;
    }
}
