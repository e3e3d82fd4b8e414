package io.javadevices.vfiouser.rpc;

import io.javadevices.vfiouser.protocol.MiniJson;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Decodes one request line of the control plane and encodes its response line (JSON-RPC 2.0).
 *
 * <p><b>Why our own JSON reader.</b> The control plane reads its JSON with {@link MiniJson#parseStrict}, the
 * project's reader that the VERSION negotiation already uses and fuzzes, rather than a JSON library: every
 * hostile-input rule is then ours, visible and fuzzed in one place (nesting at most 16 levels, numbers at most 64
 * characters and within 64 bits or finite doubles, duplicate keys refused, unpaired surrogates refused, control
 * characters and so NUL refused in strings), where a library's defaults differ (duplicate keys last-wins, a
 * nesting limit of hundreds or none, big-number types) and each would need configuring and re-checking on every
 * upgrade; its values are already the plain Java objects {@code io.javadevices.pci.DeviceControl} takes; and the
 * server stays free of third-party parsing code. Invalid UTF-8 is refused before parsing ({@link #decode}).
 *
 * <p><b>Decisions</b> (JSON-RPC 2.0 §4, §5): a request that cannot be read gets an error with {@code id} null; a
 * batch (an array) is refused, keeping one answer per line; unknown members of the request object are refused;
 * {@code id} must be a string, a number or null; {@code params} must be an object (by-name) if present.
 */
public final class RpcCodec {
    /** The longest request line, without its line feed. */
    public static final int MAX_LINE_BYTES = 1 << 20;
    private static final Set<String> MEMBERS = Set.of("jsonrpc", "id", "method", "params");

    private RpcCodec() {
    }

    /** What a line decodes to. */
    public sealed interface Decoded permits Request, Invalid {
    }

    /**
     * A well-formed request.
     *
     * @param hasId  false for a notification (no {@code id} member): executed, never answered (§4.1)
     * @param id     the id to echo ({@code String}, {@code Long}, {@code Double} or null)
     * @param method the method name
     * @param params the by-name parameters (empty if absent)
     */
    public record Request(boolean hasId, Object id, String method, Map<String, Object> params) implements Decoded {
        public boolean notification() {
            return !hasId;
        }
    }

    /** A line that is no valid request: answered with {@code error}, echoing {@code id} when it could be read. */
    public record Invalid(Object id, RpcError error) implements Decoded {
    }

    /** Decodes {@code line[offset, offset + length)} (no line feed). Never throws for any input. */
    public static Decoded decode(byte[] line, int offset, int length) {
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(line, offset, length)).toString();
        } catch (CharacterCodingException e) {
            return invalid(null, RpcError.PARSE_ERROR, "parse error: the request is not valid UTF-8");
        }
        return decode(text);
    }

    /** Decodes one request's text. Never throws for any input. */
    public static Decoded decode(CharSequence text) {
        Object value;
        try {
            value = MiniJson.parseStrict(text.toString());
        } catch (IllegalArgumentException e) {
            return invalid(null, RpcError.PARSE_ERROR, "parse error: " + e.getMessage());
        }
        if (value instanceof List<?>) {
            return invalid(null, RpcError.INVALID_REQUEST, "batch requests are not supported");
        }
        if (!(value instanceof Map<?, ?> map)) {
            return invalid(null, RpcError.INVALID_REQUEST, "the request must be a JSON object");
        }
        boolean hasId = map.containsKey("id");
        Object id = map.get("id");
        if (id != null && !(id instanceof String) && !(id instanceof Long) && !(id instanceof Double)) {
            return invalid(null, RpcError.INVALID_REQUEST, "id must be a string, a number or null");
        }
        if (!"2.0".equals(map.get("jsonrpc"))) {
            return invalid(id, RpcError.INVALID_REQUEST, "jsonrpc must be \"2.0\"");
        }
        if (!(map.get("method") instanceof String method)) {
            return invalid(id, RpcError.INVALID_REQUEST, map.containsKey("method") ? "method must be a string"
                    : "method is missing");
        }
        for (Object key : map.keySet()) {
            if (!MEMBERS.contains(key)) {
                return invalid(id, RpcError.INVALID_REQUEST, "unknown request member \"" + Params.shown((String) key)
                        + "\" (a request has jsonrpc, id, method and params)");
            }
        }
        Map<String, Object> params = new LinkedHashMap<>();
        if (map.containsKey("params")) {
            if (!(map.get("params") instanceof Map<?, ?> given)) {
                return invalid(id, RpcError.INVALID_REQUEST, "params must be an object (parameters by name)");
            }
            given.forEach((k, v) -> params.put((String) k, v));
        }
        return new Request(hasId, id, method, params);
    }

    private static Invalid invalid(Object id, int code, String message) {
        return new Invalid(id, new RpcError(code, message));
    }

    /** {@code {"jsonrpc":"2.0","id":..,"result":..}} on one line, without the line feed. */
    public static String result(Object id, Object result) {
        Map<String, Object> response = new LinkedHashMap<>();
        response.put("jsonrpc", "2.0");
        response.put("id", id);
        response.put("result", result);
        return JsonWriter.compact(response);
    }

    /** {@code {"jsonrpc":"2.0","id":..,"error":{"code":..,"message":..}}} on one line, without the line feed. */
    public static String error(Object id, RpcError error) {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("code", (long) error.code());
        body.put("message", error.getMessage());
        Map<String, Object> response = new LinkedHashMap<>();
        response.put("jsonrpc", "2.0");
        response.put("id", id);
        response.put("error", body);
        return JsonWriter.compact(response);
    }

    /** A response line for the wire: UTF-8 with its line feed (lossless: {@link JsonWriter} escapes surrogates). */
    static byte[] line(String response) {
        return (response + "\n").getBytes(StandardCharsets.UTF_8);
    }
}
