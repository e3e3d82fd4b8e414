package io.javadevices.vfiouser.protocol;

import java.util.Map;

/**
 * The capabilities one side of a VERSION exchange announces (spec "VFIO_USER_VERSION", JSON object
 * {@code {"capabilities": {...}}}). Parsing is tolerant: unknown keys and key order are ignored, absent
 * keys take the spec defaults; a known key with the wrong type is an error.
 *
 * @param maxMsgFds       {@code max_msg_fds}: most fds the sender accepts in one message (default 1)
 * @param maxDataXferSize {@code max_data_xfer_size}: largest data transfer the sender accepts (default 1 MiB)
 * @param pgsizes         {@code pgsizes}: supported page-size bitmap (default 4096)
 * @param maxDmaMaps      {@code max_dma_maps}: most DMA mappings the sender supports (default 65535)
 * @param writeMultiple   {@code write_multiple}: sender accepts REGION_WRITE_MULTI (default false)
 */
public record Capabilities(long maxMsgFds, long maxDataXferSize, long pgsizes, long maxDmaMaps, boolean writeMultiple) {

    /** Spec defaults, used for keys the peer leaves out. */
    public static final Capabilities DEFAULTS = new Capabilities(1, 1 << 20, 4096, 65535, false);

    /**
     * Parses the JSON of a VERSION message.
     *
     * @throws IllegalArgumentException if the text is not a JSON object or a known key has a bad value
     */
    public static Capabilities parse(String json) {
        Object root = MiniJson.parse(json);
        if (!(root instanceof Map<?, ?> top)) {
            throw new IllegalArgumentException("VERSION JSON is not an object");
        }
        Object capsValue = top.get("capabilities");
        if (capsValue == null) {
            return DEFAULTS;
        }
        if (!(capsValue instanceof Map<?, ?> caps)) {
            throw new IllegalArgumentException("\"capabilities\" is not an object");
        }
        return new Capabilities(
                number(caps, "max_msg_fds", DEFAULTS.maxMsgFds),
                number(caps, "max_data_xfer_size", DEFAULTS.maxDataXferSize),
                number(caps, "pgsizes", DEFAULTS.pgsizes),
                number(caps, "max_dma_maps", DEFAULTS.maxDmaMaps),
                bool(caps, "write_multiple", DEFAULTS.writeMultiple));
    }

    private static long number(Map<?, ?> caps, String key, long fallback) {
        Object v = caps.get(key);
        if (v == null) {
            return fallback;
        }
        if (v instanceof Long l && l >= 0) {
            return l;
        }
        throw new IllegalArgumentException("capability " + key + " must be a non-negative integer: " + v);
    }

    private static boolean bool(Map<?, ?> caps, String key, boolean fallback) {
        Object v = caps.get(key);
        if (v == null) {
            return fallback;
        }
        if (v instanceof Boolean b) {
            return b;
        }
        throw new IllegalArgumentException("capability " + key + " must be a boolean: " + v);
    }

    /**
     * The server's JSON: only the keys whose defaults are wrong for us, so the reply stays shorter than
     * QEMU's request (QEMU sizes the reply buffer from its request: "reply larger than recv buffer",
     * hw/vfio-user/proxy.c). {@code write_multiple} is not advertised (QEMU would then also force queued
     * sends, proxy.h); {@code migration} and {@code twin_socket} are not supported.
     */
    public String toServerJson() {
        return "{\"capabilities\":{\"max_msg_fds\":" + maxMsgFds
                + ",\"max_data_xfer_size\":" + maxDataXferSize
                + ",\"pgsizes\":" + pgsizes
                + ",\"max_dma_maps\":" + maxDmaMaps + "}}";
    }
}
