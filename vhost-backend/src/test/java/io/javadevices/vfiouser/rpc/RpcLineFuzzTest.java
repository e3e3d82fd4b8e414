package io.javadevices.vfiouser.rpc;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.javadevices.vfiouser.protocol.MiniJson;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Coverage-guided fuzzing (Jazzer) of the control plane's line decoder, as {@link RpcSession} runs it: the bytes
 * a client sends, split by {@link LineBuffer} (limit 4 KiB here, so the fuzzer reaches it), each line decoded by
 * {@link RpcCodec#decode}. Invariants: nothing throws (any escape — StackOverflowError, NumberFormatException,
 * IndexOutOfBounds, ClassCast — is a finding); an invalid line's code is one of JSON-RPC's request-level codes; a
 * request's params survive a round trip through {@link JsonWriter} and the strict reader; and the response line
 * for any decoded input is a single line of strict JSON that echoes the id.
 *
 * <p>{@code mvn test} replays the inputs in {@code RpcLineFuzzTestInputs/requestLines/} (seeds and past findings);
 * {@code mvn verify} also fuzzes for a short time (see the module pom).
 */
class RpcLineFuzzTest {
    private static final Set<Integer> REQUEST_LEVEL_CODES = Set.of(RpcError.PARSE_ERROR, RpcError.INVALID_REQUEST);

    @FuzzTest(maxDuration = "20s")
    void requestLines(byte[] input) {
        LineBuffer lines = new LineBuffer(4096);
        List<byte[]> got = new ArrayList<>();
        // feed in two pieces: a line may span reads
        int cut = input.length / 2;
        LineBuffer.Sink sink = (b, o, n) -> {
            byte[] line = new byte[n];
            System.arraycopy(b, o, line, 0, n);
            got.add(line);
            return true;
        };
        LineBuffer.Result r = lines.feed(input, 0, cut, sink);
        if (r == LineBuffer.Result.MORE) {
            lines.feed(input, cut, input.length - cut, sink);
        }
        got.add(input); // and the whole input as one line
        for (byte[] line : got) {
            assertTrue(line.length <= 4096 || line == input);
            check(RpcCodec.decode(line, 0, line.length));
        }
    }

    private static void check(RpcCodec.Decoded decoded) {
        String response;
        Object id;
        switch (decoded) {
            case RpcCodec.Invalid invalid -> {
                assertTrue(REQUEST_LEVEL_CODES.contains(invalid.error().code()), invalid.error()::getMessage);
                assertFalse(invalid.error().getMessage().isBlank());
                id = invalid.id();
                response = RpcCodec.error(id, invalid.error());
            }
            case RpcCodec.Request request -> {
                assertEquals(request.params(), MiniJson.parseStrict(JsonWriter.compact(request.params())),
                        "params round trip");
                id = request.id();
                response = RpcCodec.result(id, request.params());
            }
        }
        assertFalse(response.contains("\n"), "one line");
        Object back = MiniJson.parseStrict(response);
        assertTrue(back instanceof Map<?, ?>);
        assertEquals(id, ((Map<?, ?>) back).get("id"), "the id is echoed as it was read");
    }
}
