package io.javadevices.vfiouser.rpc;

import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The by-name parameters of one of the host's own methods, read with their types checked: a missing, unknown
 * or ill-typed parameter is an {@link RpcError#INVALID_PARAMS} naming it (JSON-RPC 2.0 §5.1), before anything
 * changes.
 */
final class Params {
    private final String method;
    private final Map<String, Object> values;

    /** @throws RpcError if {@code values} holds a parameter not in {@code accepted} */
    Params(String method, Map<String, Object> values, Set<String> accepted) throws RpcError {
        this.method = method;
        this.values = values;
        for (String name : values.keySet()) {
            if (!accepted.contains(name)) {
                throw RpcError.invalidParams("unknown parameter \"" + shown(name) + "\" of " + method
                        + (accepted.isEmpty() ? " (it takes none)" : " (it takes " + String.join(", ",
                        accepted.stream().sorted().toList()) + ")"));
            }
        }
    }

    boolean has(String name) {
        return values.containsKey(name);
    }

    /** A string parameter; null if absent and not {@code required}. */
    String string(String name, boolean required) throws RpcError {
        Object v = values.get(name);
        if (v == null && !values.containsKey(name)) {
            if (required) {
                throw RpcError.invalidParams(method + " needs the parameter \"" + name + "\"");
            }
            return null;
        }
        if (!(v instanceof String s)) {
            throw RpcError.invalidParams(name + " must be a string, not " + describe(v));
        }
        return s;
    }

    /** An integer parameter, or null if absent. */
    Long integer(String name) throws RpcError {
        if (!values.containsKey(name)) {
            return null;
        }
        if (!(values.get(name) instanceof Long l)) {
            throw RpcError.invalidParams(name + " must be an integer, not " + describe(values.get(name)));
        }
        return l;
    }

    /** A socket path parameter (required): a non-empty string that is a path. */
    Path socket(String name) throws RpcError {
        String text = string(name, true);
        if (text.isEmpty()) {
            throw RpcError.invalidParams(name + " must be a socket path, not an empty string");
        }
        try {
            return Path.of(text);
        } catch (InvalidPathException e) {
            throw RpcError.invalidParams(name + " is not a usable path: " + e.getMessage());
        }
    }

    /** A list of strings (one string counts as a list of one), or null if absent. */
    List<String> strings(String name) throws RpcError {
        if (!values.containsKey(name)) {
            return null;
        }
        Object v = values.get(name);
        if (v instanceof String s) {
            return List.of(s);
        }
        if (!(v instanceof List<?> list)) {
            throw RpcError.invalidParams(name + " must be an array of strings, not " + describe(v));
        }
        List<String> out = new ArrayList<>(list.size());
        for (int i = 0; i < list.size(); i++) {
            if (!(list.get(i) instanceof String s)) {
                throw RpcError.invalidParams(name + "[" + i + "] must be a string, not " + describe(list.get(i)));
            }
            out.add(s);
        }
        return out;
    }

    /** An object of string values, or an empty map if absent. */
    Map<String, String> stringMap(String name) throws RpcError {
        Map<String, String> out = new LinkedHashMap<>();
        if (!values.containsKey(name)) {
            return out;
        }
        if (!(values.get(name) instanceof Map<?, ?> map)) {
            throw RpcError.invalidParams(name + " must be an object of strings, not " + describe(values.get(name)));
        }
        for (Map.Entry<?, ?> e : map.entrySet()) {
            if (!(e.getValue() instanceof String s)) {
                throw RpcError.invalidParams(name + "." + shown((String) e.getKey()) + " must be a string, not "
                        + describe(e.getValue()));
            }
            out.put((String) e.getKey(), s);
        }
        return out;
    }

    /**
     * A client's text quoted in a message: at most 40 characters (a surrogate pair is never cut), control characters as '?' (the message is also
     * logged, and a client must not forge log lines).
     */
    static String shown(String text) {
        String cut = text;
        if (text.length() > 40) {
            int end = Character.isHighSurrogate(text.charAt(39)) ? 39 : 40; // a pair's halves stay together
            cut = text.substring(0, end) + "...";
        }
        StringBuilder b = new StringBuilder(cut.length());
        for (int i = 0; i < cut.length(); i++) {
            char c = cut.charAt(i);
            b.append(c < 0x20 || c == 0x7F || c == '\u2028' || c == '\u2029' ? '?' : c);
        }
        return b.toString();
    }

    /** The JSON type of a value, for messages. */
    static String describe(Object v) {
        return switch (v) {
            case null -> "null";
            case String s -> "a string";
            case Long l -> "the number " + l;
            case Double d -> "the number " + d;
            case Boolean b -> b.toString();
            case List<?> l -> "an array";
            case Map<?, ?> m -> "an object";
            default -> v.getClass().getSimpleName();
        };
    }
}
