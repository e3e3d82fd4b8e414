package io.javadevices.vfiouser.protocol;

import com.code_intelligence.jazzer.junit.FuzzTest;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Coverage-guided fuzzing (Jazzer) of the VERSION capabilities JSON, decoded exactly as
 * {@code Connection.version} decodes it (the message bytes without one trailing NUL, as UTF-8). Invariant: {@link MiniJson#parse} and
 * {@link Capabilities#parse} either return or throw {@link IllegalArgumentException} (their documented
 * exception, answered with EINVAL); any other throwable — StackOverflowError, OutOfMemoryError,
 * IndexOutOfBounds, NumberFormatException — escapes and is a finding. A parsed value never nests deeper
 * than {@link MiniJson#MAX_DEPTH}, parsed capabilities are never negative, and the server's own JSON for
 * them parses back to the same numbers.
 *
 * <p>{@code mvn test} replays the inputs in {@code VersionJsonFuzzTestInputs/capabilitiesJson/} (seeds and
 * past findings); {@code mvn verify} also fuzzes for a short time; see the module pom for the long mode.
 */
class VersionJsonFuzzTest {

    @FuzzTest(maxDuration = "20s")
    void capabilitiesJson(byte[] message) {
        int length = message.length > 0 && message[message.length - 1] == 0 ? message.length - 1 : message.length;
        String text = new String(message, 0, length, StandardCharsets.UTF_8); // one trailing NUL, as Connection
        Object value;
        try {
            value = MiniJson.parse(text);
        } catch (IllegalArgumentException expected) {
            assertTrue(expected.getMessage().startsWith("JSON: "), expected::getMessage);
            value = null;
        }
        if (value != null) {
            // MAX_DEPTH counts levels below the top value: at most MAX_DEPTH + 1 nested containers.
            int depth = nesting(value);
            assertTrue(depth <= MiniJson.MAX_DEPTH + 1, "nesting " + depth + " accepted");
        }
        Capabilities caps;
        try {
            caps = Capabilities.parse(text);
        } catch (IllegalArgumentException expected) {
            return;
        }
        assertTrue(value instanceof Map<?, ?>, "capabilities from a non-object: " + value);
        assertTrue(caps.maxMsgFds() >= 0 && caps.maxDataXferSize() >= 0 && caps.pgsizes() >= 0
                && caps.maxDmaMaps() >= 0, caps::toString);
        Capabilities back = Capabilities.parse(caps.toServerJson());
        assertEquals(new Capabilities(caps.maxMsgFds(), caps.maxDataXferSize(), caps.pgsizes(), caps.maxDmaMaps(),
                false), back);
    }

    /** Number of nested containers (0 for a scalar). */
    private static int nesting(Object value) {
        if (value instanceof Map<?, ?> map) {
            int deepest = 0;
            for (Object child : map.values()) {
                deepest = Math.max(deepest, nesting(child));
            }
            return 1 + deepest;
        }
        if (value instanceof List<?> list) {
            int deepest = 0;
            for (Object child : list) {
                deepest = Math.max(deepest, nesting(child));
            }
            return 1 + deepest;
        }
        return 0;
    }
}
