package io.javadevices.nvme.control;

import io.javadevices.pci.ByteSizes;
import io.javadevices.pci.DeviceControl.ControlException;

import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The named parameters of one control call, read with their types checked: JSON integers arrive as {@code Long},
 * strings as {@code String} ({@link io.javadevices.pci.DeviceControl}). Every problem is an
 * {@link ControlException#invalidParams} whose one sentence names the method and the parameter, so a caller sees
 * what to fix; nothing has been changed when one is thrown (the methods read all their parameters first).
 */
final class ControlParams {
    private final String method;
    private final Map<String, Object> params;

    /** Refuses any parameter not in {@code known}. */
    ControlParams(String method, Map<String, Object> params, Set<String> known) throws ControlException {
        this.method = method;
        this.params = params == null ? Map.of() : params;
        for (String key : this.params.keySet()) {
            if (!known.contains(key)) {
                throw invalid("unknown parameter '" + key + "' (known: " + String.join(", ", new TreeSet<>(known)) + ")");
            }
        }
    }

    /** A parameter is missing, ill-typed or out of range ({@code what} completes "METHOD: "). */
    ControlException invalid(String what) {
        return ControlException.invalidParams(method + ": " + what);
    }

    /** Well-formed, but not possible now ({@code why} completes "METHOD: "). */
    ControlException refused(String why) {
        return ControlException.refused(method + ": " + why);
    }

    boolean has(String name) {
        return params.get(name) != null;
    }

    /** A required string. */
    String string(String name, String example) throws ControlException {
        Object v = params.get(name);
        if (v == null) {
            throw invalid("parameter '" + name + "' is missing (" + example + ")");
        }
        if (!(v instanceof String s)) {
            throw invalid("parameter '" + name + "' must be a string (" + example + "), not " + describe(v));
        }
        return s;
    }

    /** A required integer. */
    long integer(String name) throws ControlException {
        Object v = params.get(name);
        if (v == null) {
            throw invalid("parameter '" + name + "' is missing (an integer)");
        }
        if (!(v instanceof Long n)) {
            throw invalid("parameter '" + name + "' must be an integer, not " + describe(v));
        }
        return n;
    }

    /** An optional boolean. */
    boolean flag(String name, boolean absent) throws ControlException {
        Object v = params.get(name);
        if (v == null) {
            return absent;
        }
        if (!(v instanceof Boolean b)) {
            throw invalid("parameter '" + name + "' must be true or false, not " + describe(v));
        }
        return b;
    }

    /** A required size in bytes: an integer, or a string in the command line's size grammar ({@code "2G"}); above 0. */
    long size(String name) throws ControlException {
        Object v = params.get(name);
        long bytes;
        if (v == null) {
            throw invalid("parameter '" + name + "' is missing (bytes, or a size such as \"2G\")");
        } else if (v instanceof Long n) {
            bytes = n;
        } else if (v instanceof String s) {
            try {
                bytes = ByteSizes.parse(s);
            } catch (IllegalArgumentException e) {
                throw invalid("parameter '" + name + "' is not a size (bytes, or e.g. \"64M\", \"2G\"): '" + s + "'");
            }
        } else {
            throw invalid("parameter '" + name + "' must be bytes or a size string such as \"2G\", not " + describe(v));
        }
        if (bytes <= 0) {
            throw invalid("parameter '" + name + "' must be above 0 bytes: " + bytes);
        }
        return bytes;
    }

    private static String describe(Object v) {
        return switch (v) {
            case String s -> "the string '" + s + "'";
            case Long n -> "the integer " + n;
            case Double d -> "the number " + d;
            case Boolean b -> "the boolean " + b;
            case java.util.List<?> l -> "an array";
            case Map<?, ?> m -> "an object";
            default -> "a " + v.getClass().getSimpleName();
        };
    }
}
