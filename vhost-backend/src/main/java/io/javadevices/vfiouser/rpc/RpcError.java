package io.javadevices.vfiouser.rpc;

/**
 * A JSON-RPC 2.0 error (§5.1): the code and one sentence naming what was wrong. Nothing was changed by the
 * request that got it.
 */
public final class RpcError extends Exception {
    /** Malformed JSON (or not UTF-8). */
    public static final int PARSE_ERROR = -32700;
    /**
     * Not a request object, wrong {@code jsonrpc}, {@code method} not a string, {@code params} not an object, a batch,
     * an oversized line.
     */
    public static final int INVALID_REQUEST = -32600;
    public static final int METHOD_NOT_FOUND = -32601;
    /** Missing, unknown or ill-typed parameter; unknown controller; bad namespace grammar; size out of range. */
    public static final int INVALID_PARAMS = -32602;
    /** A bug: the server could not carry out a well-formed call. */
    public static final int INTERNAL_ERROR = -32603;
    /** Well formed but not possible now (server-defined range of §5.1). */
    public static final int REFUSED = -32000;

    private final int code;

    public RpcError(int code, String message) {
        super(message, null, false, false); // an answer to a client, not a bug: no stack trace
        this.code = code;
    }

    public int code() {
        return code;
    }

    static RpcError invalidParams(String message) {
        return new RpcError(INVALID_PARAMS, message);
    }

    static RpcError refused(String message) {
        return new RpcError(REFUSED, message);
    }
}
