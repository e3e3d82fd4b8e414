package io.javadevices.vfiouser.rpc;

import io.javadevices.vfiouser.protocol.MiniJson;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The request decoder, the response encoder and the line splitter, without sockets. */
class RpcCodecTest {

    private static RpcCodec.Decoded decode(String text) {
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        return RpcCodec.decode(b, 0, b.length);
    }

    private static int code(String text) {
        return assertInstanceOf(RpcCodec.Invalid.class, decode(text)).error().code();
    }

    @Test
    void aRequestIsDecoded() {
        RpcCodec.Request r = assertInstanceOf(RpcCodec.Request.class, decode(
                "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"namespace_add\",\"params\":{\"nsid\":2,\"x\":null}}"));
        assertEquals(7L, r.id());
        assertFalse(r.notification());
        assertEquals("namespace_add", r.method());
        Map<String, Object> expected = new LinkedHashMap<>();
        expected.put("nsid", 2L);
        expected.put("x", null);
        assertEquals(expected, r.params(), "JSON null is Java null, integers are Long");
        RpcCodec.Request n = assertInstanceOf(RpcCodec.Request.class, decode("{\"method\":\"m\",\"jsonrpc\":\"2.0\"}"));
        assertTrue(n.notification());
        assertEquals(Map.of(), n.params());
        RpcCodec.Request nullId = assertInstanceOf(RpcCodec.Request.class,
                decode("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"m\"}"));
        assertFalse(nullId.notification(), "an id of null is still an id");
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "{", "{\"a\":1,}", "nul", "{\"a\":01}", "{\"a\":1}{}", "{\"a\":\"\\ud800\"}",
            "{\"a\":\"\\udc00\\ud800\"}", "{\"a\":1e999}", "{\"a\":-1e999}", "{\"a\":99999999999999999999}",
            "{\"a\":\"b\",\"a\":\"b\"}", "{\"a\":\"\u0000\"}", "{\"a\":\"\u001f\"}"})
    void malformedOrAmbiguousJsonIsAParseError(String text) {
        assertEquals(RpcError.PARSE_ERROR, code(text), text);
    }

    @Test
    void limitsOfTheStrictReader() {
        assertEquals(RpcError.PARSE_ERROR, code("[".repeat(18) + "]".repeat(18)), "18 levels");
        assertEquals(RpcError.INVALID_REQUEST, code("[".repeat(17) + "]".repeat(17)), "17 levels parse (a batch)");
        assertEquals(RpcError.PARSE_ERROR, code("{\"a\":1" + "0".repeat(64) + "}"), "65-character number");
        assertEquals(RpcError.INVALID_REQUEST, code("{\"a\":" + Long.MIN_VALUE + "}"), "64-bit integers parse");
        assertEquals("a\ud83d\ude00", ((Map<?, ?>) MiniJson.parseStrict("{\"k\":\"a\\ud83d\\ude00\"}")).get("k"),
                "a surrogate pair is fine");
        assertEquals(MiniJson.NULL, MiniJson.parse("null"), "the lenient reader keeps its NULL");
        assertEquals(2L, ((Map<?, ?>) MiniJson.parse("{\"a\":1,\"a\":2}")).get("a"), "and its last-wins");
    }

    @ParameterizedTest
    @ValueSource(strings = {"[]", "[{\"jsonrpc\":\"2.0\",\"method\":\"m\"}]", "1", "\"s\"", "true", "null",
            "{\"method\":\"m\"}", "{\"jsonrpc\":2.0,\"method\":\"m\"}", "{\"jsonrpc\":\"2.0\"}",
            "{\"jsonrpc\":\"2.0\",\"method\":null}", "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":null}",
            "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":\"p\"}", "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":[1]}",
            "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":true}", "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"extra\":1}"})
    void wellFormedButNoRequestIsAnInvalidRequest(String text) {
        assertEquals(RpcError.INVALID_REQUEST, code(text), text);
    }

    @Test
    void theIdIsEchoedWhenItCouldBeRead() {
        assertEquals(5L, assertInstanceOf(RpcCodec.Invalid.class, decode("{\"jsonrpc\":\"1\",\"id\":5,\"method\":\"m\"}"))
                .id());
        assertNull(assertInstanceOf(RpcCodec.Invalid.class, decode("{\"id\":{}}")).id());
    }

    @Test
    void clientTextInMessagesIsCutAndCannotForgeLogLines() {
        RpcCodec.Invalid i = assertInstanceOf(RpcCodec.Invalid.class,
                decode("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"a\\nWARNING: forged" + "x".repeat(100) + "\":1}"));
        String message = i.error().getMessage();
        assertFalse(message.contains("\n"), message);
        assertTrue(message.contains("a?WARNING: forged") && message.contains("..."), message);
        assertTrue(message.length() < 150, message);
    }

    /**
     * A message quoting a client's character never carries half of a surrogate pair: a supplementary character
     * where a value starts, after a backslash, or straddling the 40-character cut of a quoted key. The response
     * must read back with the strict reader (a fuzzing finding: the bare high surrogate made it unreadable).
     */
    @Test
    void messagesNeverSplitASurrogatePair() {
        String emoji = new String(Character.toChars(0x1F600));
        for (String request : List.of(emoji + "se", "\"\\" + emoji + "\"",
                "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"" + "x".repeat(39) + emoji + "\":1}")) {
            RpcCodec.Invalid i = assertInstanceOf(RpcCodec.Invalid.class, decode(request));
            String response = RpcCodec.error(i.id(), i.error());
            Map<?, ?> back = assertInstanceOf(Map.class, MiniJson.parseStrict(response), response);
            String message = (String) ((Map<?, ?>) back.get("error")).get("message");
            assertEquals(i.error().getMessage(), message, "the strict reader refuses an unpaired surrogate");
        }
        assertTrue(((RpcCodec.Invalid) decode(emoji)).error().getMessage().contains("U+D83D"),
                "a character that is not printable ASCII is named by its code unit");
    }

    @Test
    void invalidUtf8IsAParseError() {
        for (byte[] bad : new byte[][] {{(byte) 0xFF}, {'"', (byte) 0xC0, (byte) 0x80, '"'}, {'"', (byte) 0xED,
                (byte) 0xA0, (byte) 0x80, '"'} /* an encoded surrogate */, {'"', (byte) 0xE2, (byte) 0x82, '"'}}) {
            RpcCodec.Invalid i = assertInstanceOf(RpcCodec.Invalid.class, RpcCodec.decode(bad, 0, bad.length));
            assertEquals(RpcError.PARSE_ERROR, i.error().code());
            assertTrue(i.error().getMessage().contains("UTF-8"));
        }
    }

    @Test
    void responsesAreOneLineOfValidJson() {
        String result = RpcCodec.result("i\nd", Map.of("text", "line1\nline2\u2028\u0000\"\\", "lone", "\ud800x",
                "n", Double.NaN));
        assertFalse(result.contains("\n"));
        Map<?, ?> back = (Map<?, ?>) MiniJson.parse(result.replace("\\ud800", "?"));
        assertEquals("i\nd", back.get("id"));
        Map<?, ?> r = (Map<?, ?>) back.get("result");
        assertEquals("line1\nline2\u2028\u0000\"\\", r.get("text"));
        assertEquals(MiniJson.NULL, r.get("n"), "NaN is written as null");
        assertTrue(result.contains("\\ud800x"), "a lone surrogate travels as its escape");
        String error = RpcCodec.error(null, new RpcError(-32602, "bad \"x\""));
        assertEquals("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32602,\"message\":\"bad \\\"x\\\"\"}}", error);
        byte[] line = RpcCodec.line(error);
        assertEquals('\n', line[line.length - 1]);
    }

    @Test
    void prettyJsonIndentsAndParsesBack() {
        Map<String, Object> v = new LinkedHashMap<>();
        v.put("a", List.of(1L, "x"));
        v.put("b", Map.of());
        v.put("c", List.of());
        v.put("d", null);
        String pretty = JsonWriter.pretty(v);
        assertEquals("{\n  \"a\": [\n    1,\n    \"x\"\n  ],\n  \"b\": {},\n  \"c\": [],\n  \"d\": null\n}", pretty);
        assertEquals(v, MiniJson.parseStrict(pretty));
    }

    @Test
    void linesAreSplitWithinTheLimit() {
        LineBuffer lines = new LineBuffer(8);
        List<String> got = new ArrayList<>();
        LineBuffer.Sink sink = (b, o, n) -> got.add(new String(b, o, n, StandardCharsets.US_ASCII));
        byte[] input = "ab\ncd\r\n\nxy".getBytes(StandardCharsets.US_ASCII);
        for (byte b : input) { // byte by byte: a line may span any number of reads
            assertEquals(LineBuffer.Result.MORE, lines.feed(new byte[] {b}, 0, 1, sink));
        }
        assertEquals(List.of("ab", "cd", ""), got);
        assertEquals(2, lines.pending());
        assertEquals(LineBuffer.Result.MORE, lines.feed("345678\n".getBytes(StandardCharsets.US_ASCII), 0, 7, sink));
        assertEquals("xy345678", got.get(3), "exactly the limit");
        assertEquals(LineBuffer.Result.MORE, lines.feed("12345678\r\n".getBytes(StandardCharsets.US_ASCII), 0, 10, sink));
        assertEquals("12345678", got.get(4), "the limit plus a CR");
        assertEquals(LineBuffer.Result.OVERSIZED, lines.feed("123456789\n".getBytes(StandardCharsets.US_ASCII), 0, 10,
                sink));
        LineBuffer partial = new LineBuffer(8);
        byte[] nine = new byte[9];
        Arrays.fill(nine, (byte) 'a');
        assertEquals(LineBuffer.Result.MORE, partial.feed(nine, 0, 9, sink), "limit + 1 may still end in CRLF");
        assertEquals(LineBuffer.Result.OVERSIZED, partial.feed(nine, 0, 1, sink), "limit + 2 cannot");
        LineBuffer stopping = new LineBuffer(8);
        assertEquals(LineBuffer.Result.STOPPED, stopping.feed("a\nb\n".getBytes(StandardCharsets.US_ASCII), 0, 4,
                (b, o, n) -> false));
    }
}
