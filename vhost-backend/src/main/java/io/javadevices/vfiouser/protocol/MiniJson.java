package io.javadevices.vfiouser.protocol;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * A small, strict-syntax but schema-tolerant JSON reader for the VERSION capabilities (RFC 8259 values:
 * objects → {@code Map<String,Object>}, arrays → {@code List<Object>}, integers → {@code Long}, other
 * numbers → {@code Double}, strings, booleans, {@code null} → {@link #NULL}). Key order, whitespace
 * and unknown keys do not matter; nesting is limited to {@value #MAX_DEPTH} levels so hostile input cannot
 * exhaust the stack. Input size is bounded by the caller (the message size limit).
 *
 * <p>Called on the connection thread during VERSION negotiation; throws
 * {@link IllegalArgumentException} on malformed input (the server replies EINVAL).
 */
public final class MiniJson {
    /** The number grammar of RFC 8259 §6: {@code -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?}. */
    private static final Pattern NUMBER = Pattern.compile("-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?");

    /** The JSON {@code null} value. */
    public static final Object NULL = new Object() {
        @Override
        public String toString() {
            return "null";
        }
    };
    static final int MAX_DEPTH = 16;
    /** {@link #parseStrict}: the longest number text accepted (a 64-bit integer has at most 20 characters). */
    static final int MAX_NUMBER_CHARS = 64;

    private final String text;
    /** {@link #parseStrict} rules on top of the grammar (see there). */
    private final boolean strict;
    private int at;

    private MiniJson(String text, boolean strict) {
        this.text = text;
        this.strict = strict;
    }

    /** Parses one JSON value that makes up the whole text (surrounding whitespace allowed). */
    public static Object parse(String text) {
        return parse(text, false);
    }

    /**
     * {@link #parse} for input whose meaning must be unambiguous (the JSON-RPC control plane): besides the
     * grammar it refuses what RFC 8259 leaves to the implementation, so no two readers can disagree on a
     * request: a duplicate object key (§4: "names SHOULD be unique"; last-wins vs first-wins is how one
     * reader's check is bypassed in another), an integer outside 64 bits and a number that is not finite as
     * a double (§6: precision and range are implementation limits), a number longer than
     * {@value #MAX_NUMBER_CHARS} characters, and a {@code \\u} escape that leaves a surrogate unpaired (§8.2:
     * not a Unicode string). JSON {@code null} is Java {@code null} here (the value model of
     * {@code io.javadevices.pci.DeviceControl}); nesting is limited to {@value #MAX_DEPTH} levels as in
     * {@link #parse}.
     */
    public static Object parseStrict(String text) {
        return parse(text, true);
    }

    private static Object parse(String text, boolean strict) {
        MiniJson p = new MiniJson(text, strict);
        p.skipSpace();
        Object value = p.value(0);
        p.skipSpace();
        if (p.at != text.length()) {
            throw p.error("trailing characters");
        }
        return value;
    }

    private Object value(int depth) {
        if (depth > MAX_DEPTH) {
            throw error("nesting deeper than " + MAX_DEPTH);
        }
        if (at >= text.length()) {
            throw error("unexpected end");
        }
        char c = text.charAt(at);
        return switch (c) {
            case '{' -> object(depth);
            case '[' -> array(depth);
            case '"' -> string();
            case 't' -> literal("true", Boolean.TRUE);
            case 'f' -> literal("false", Boolean.FALSE);
            case 'n' -> literal("null", strict ? null : NULL);
            default -> {
                if (c == '-' || (c >= '0' && c <= '9')) {
                    yield number();
                }
                throw error("unexpected character " + shown(c));
            }
        };
    }

    private Map<String, Object> object(int depth) {
        at++; // {
        Map<String, Object> map = new LinkedHashMap<>();
        skipSpace();
        if (peek() == '}') {
            at++;
            return map;
        }
        while (true) {
            skipSpace();
            if (peek() != '"') {
                throw error("expected a key");
            }
            int keyAt = at;
            String key = string();
            skipSpace();
            expect(':');
            skipSpace();
            Object value = value(depth + 1);
            if (strict && map.containsKey(key)) {
                at = keyAt;
                throw error("duplicate key \"" + printable(key) + "\"");
            }
            map.put(key, value);
            skipSpace();
            char c = next();
            if (c == '}') {
                return map;
            }
            if (c != ',') {
                throw error("expected ',' or '}'");
            }
        }
    }

    private List<Object> array(int depth) {
        at++; // [
        List<Object> list = new ArrayList<>();
        skipSpace();
        if (peek() == ']') {
            at++;
            return list;
        }
        while (true) {
            skipSpace();
            list.add(value(depth + 1));
            skipSpace();
            char c = next();
            if (c == ']') {
                return list;
            }
            if (c != ',') {
                throw error("expected ',' or ']'");
            }
        }
    }

    private String string() {
        at++; // opening quote
        StringBuilder sb = new StringBuilder();
        while (true) {
            char c = next();
            if (c == '"') {
                if (strict) {
                    checkSurrogates(sb);
                }
                return sb.toString();
            }
            if (c < 0x20) {
                throw error("control character in string");
            }
            if (c != '\\') {
                sb.append(c);
                continue;
            }
            char e = next();
            switch (e) {
                case '"', '\\', '/' -> sb.append(e);
                case 'b' -> sb.append('\b');
                case 'f' -> sb.append('\f');
                case 'n' -> sb.append('\n');
                case 'r' -> sb.append('\r');
                case 't' -> sb.append('\t');
                case 'u' -> {
                    if (at + 4 > text.length()) {
                        throw error("short \\u escape");
                    }
                    int code = 0;
                    for (int i = 0; i < 4; i++) { // exactly four hex digits (RFC 8259 §7); no sign, unlike parseInt
                        char h = text.charAt(at + i);
                        int digit = h <= 'f' ? Character.digit(h, 16) : -1; // ASCII hex only
                        if (digit < 0) {
                            throw error("bad \\u escape");
                        }
                        code = code << 4 | digit;
                    }
                    sb.append((char) code);
                    at += 4;
                }
                default -> throw error("bad escape \\" + shown(e));
            }
        }
    }

    private Object number() {
        int start = at;
        if (peek() == '-') {
            at++;
        }
        boolean integral = true;
        while (at < text.length()) {
            char c = text.charAt(at);
            if (c >= '0' && c <= '9') {
                at++;
            } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
                integral = false;
                at++;
            } else {
                break;
            }
        }
        if (strict && at - start > MAX_NUMBER_CHARS) {
            throw error("number longer than " + MAX_NUMBER_CHARS + " characters");
        }
        String s = text.substring(start, at);
        if (!NUMBER.matcher(s).matches()) {
            throw error("bad number " + s); // e.g. a leading zero (01), "1." or "-.5", which RFC 8259 §6 forbids
        }
        try {
            if (integral) {
                return Long.parseLong(s);
            }
            double d = Double.parseDouble(s);
            if (strict && !Double.isFinite(d)) {
                throw error("number " + s + " is out of range");
            }
            return d;
        } catch (NumberFormatException e) {
            if (strict) {
                throw error("integer " + s + " does not fit in 64 bits");
            }
            if (integral && s.matches("-?[0-9]+")) {
                return Double.parseDouble(s); // an integer wider than 64 bits
            }
            throw error("bad number " + s);
        }
    }

    /** Strict mode: a string decoded from {@code \\u} escapes must be well-formed UTF-16 (RFC 8259 §8.2). */
    private void checkSurrogates(CharSequence s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                throw error("unpaired surrogate \\u" + Integer.toHexString(c) + " in a string");
            }
        }
    }

    /**
     * One input character for an error message: printable ASCII in quotes, anything else as {@code U+XXXX}. A
     * control character would let a client forge log lines, and a lone half of a surrogate pair (the first char of
     * a supplementary character) is no Unicode string, so the response carrying the message would not read back.
     */
    private static String shown(char c) {
        return c >= 0x20 && c < 0x7F ? "'" + c + "'" : String.format("U+%04X", (int) c);
    }

    /** A key for an error message: at most 40 characters, control characters as '?'. */
    private static String printable(String key) {
        String shown = key.length() > 40 ? key.substring(0, 40) + "..." : key;
        return shown.chars().map(ch -> ch < 0x20 || Character.isSurrogate((char) ch) ? '?' : ch)
                .collect(StringBuilder::new, StringBuilder::appendCodePoint, StringBuilder::append).toString();
    }

    private Object literal(String word, Object value) {
        if (!text.startsWith(word, at)) {
            throw error("bad literal");
        }
        at += word.length();
        return value;
    }

    private void skipSpace() {
        while (at < text.length()) {
            char c = text.charAt(at);
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
                return;
            }
            at++;
        }
    }

    private char peek() {
        if (at >= text.length()) {
            throw error("unexpected end");
        }
        return text.charAt(at);
    }

    private char next() {
        char c = peek();
        at++;
        return c;
    }

    private void expect(char c) {
        if (next() != c) {
            throw error("expected '" + c + "'");
        }
    }

    private IllegalArgumentException error(String what) {
        return new IllegalArgumentException("JSON: " + what + " at offset " + at);
    }
}
