package io.javadevices.qemutests.harness;

import io.javadevices.vfiouser.protocol.MiniJson;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A client of the server's control plane, as an operator's script would be one: JSON-RPC 2.0 over the Unix socket
 * of {@code --rpc-socket}, one request object per line out, one response line in. Requests are written by
 * {@link #json}, answers read with the vfio-user module's strict JSON reader ({@link MiniJson}: integers as
 * {@code Long}, objects as insertion-ordered maps).
 *
 * <p>{@link #call} returns the {@code result} or throws {@link RpcError} with the error's code and message;
 * {@link #send} writes any line, well-formed or not, and returns the parsed response object, for the tests of
 * bad requests. The typed helpers ({@link #controllerAdd}, {@link #namespaceAdd}, {@link #statsGet}, ...) follow
 * the method table of the wire API. Not thread-safe: one caller at a time.
 */
public final class RpcClient implements AutoCloseable {
    private final SocketChannel channel;
    private final ByteBuffer in = ByteBuffer.allocate(1 << 16);
    private final ByteArrayOutputStream line = new ByteArrayOutputStream();
    private long nextId = 1;

    private RpcClient(SocketChannel channel) {
        this.channel = channel;
        in.flip(); // empty, ready to read from
    }

    /** Connects to the control socket. */
    public static RpcClient connect(Path rpcSocket) throws IOException {
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            ch.connect(UnixDomainSocketAddress.of(rpcSocket));
        } catch (IOException e) {
            ch.close();
            throw e;
        }
        return new RpcClient(ch);
    }

    /** A JSON-RPC error answer: {@code error.code} and {@code error.message}. */
    public static final class RpcError extends Exception {
        private final long code;

        RpcError(long code, String message) {
            super(code + ": " + message);
            this.code = code;
        }

        public long code() {
            return code;
        }
    }

    /** Calls {@code method} with named {@code params} (null: none); the {@code result}, or throws {@link RpcError}. */
    public Object call(String method, Map<String, ?> params) throws IOException, RpcError {
        long id = nextId++;
        Map<String, Object> request = new LinkedHashMap<>();
        request.put("jsonrpc", "2.0");
        request.put("id", id);
        request.put("method", method);
        if (params != null) {
            request.put("params", params);
        }
        Map<String, Object> response = send(json(request));
        if (!Long.valueOf(id).equals(response.get("id"))) {
            throw new IllegalStateException("answer to request " + id + " has id " + response.get("id") + ": " + response);
        }
        if (response.get("error") instanceof Map<?, ?> error) {
            throw new RpcError(((Number) error.get("code")).longValue(), String.valueOf(error.get("message")));
        }
        if (!response.containsKey("result")) {
            throw new IllegalStateException("answer has neither result nor error: " + response);
        }
        return response.get("result");
    }

    /** Writes {@code requestLine} (a newline is added) and returns the next response line as a JSON object. */
    public Map<String, Object> send(String requestLine) throws IOException {
        ByteBuffer out = ByteBuffer.wrap((requestLine + "\n").getBytes(StandardCharsets.UTF_8));
        while (out.hasRemaining()) {
            channel.write(out);
        }
        String answer = readLine();
        Object parsed = MiniJson.parse(answer);
        if (!(parsed instanceof Map<?, ?> map) || !"2.0".equals(map.get("jsonrpc"))) {
            throw new IllegalStateException("not a JSON-RPC 2.0 response object: " + answer);
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> response = (Map<String, Object>) map;
        return response;
    }

    /** The next {@code \n}-terminated line from the server; fails if the server closes the connection first. */
    private String readLine() throws IOException {
        line.reset();
        while (true) {
            while (in.hasRemaining()) {
                byte b = in.get();
                if (b == '\n') {
                    return line.toString(StandardCharsets.UTF_8);
                }
                line.write(b);
            }
            in.clear();
            int n = channel.read(in);
            in.flip();
            if (n < 0) {
                throw new IOException("the server closed the control connection"
                        + (line.size() > 0 ? " in the middle of a line: " + line.toString(StandardCharsets.UTF_8) : ""));
            }
        }
    }

    // ---- the methods of the wire API ----

    /** {@code controller_list}: one map per controller ({@code socket}, {@code connected}, {@code namespaces}, ...). */
    public List<Map<String, Object>> controllerList() throws IOException, RpcError {
        return maps(((Map<?, ?>) call("controller_list", null)).get("controllers"));
    }

    /** The {@code controller_list} entry of the controller on {@code socket}; fails if there is none. */
    public Map<String, Object> controller(Path socket) throws IOException, RpcError {
        String wanted = socket.toAbsolutePath().normalize().toString();
        for (Map<String, Object> c : controllerList()) {
            if (wanted.equals(c.get("socket"))) {
                return c;
            }
        }
        throw new AssertionError("controller_list has no controller " + wanted + ": " + controllerList());
    }

    /** {@code controller_add} of an NVMe controller on {@code socket} with these namespaces (CLI grammar). */
    public Map<String, Object> controllerAdd(Path socket, String... namespaces) throws IOException, RpcError {
        return controllerAdd(socket, null, Map.of(), namespaces);
    }

    /** {@code controller_add} with a queue count (null: the device's default) and device options ({@code -o}). */
    public Map<String, Object> controllerAdd(Path socket, Integer queues, Map<String, String> options,
                                             String... namespaces) throws IOException, RpcError {
        Map<String, Object> params = new LinkedHashMap<>();
        params.put("socket", socket.toString());
        if (namespaces.length > 0) {
            params.put("namespaces", List.of(namespaces));
        }
        if (queues != null) {
            params.put("queues", queues);
        }
        if (!options.isEmpty()) {
            params.put("options", options);
        }
        return map(call("controller_add", params));
    }

    /** {@code controller_remove}: disconnects the client, flushes and closes the device, removes the socket. */
    public Map<String, Object> controllerRemove(Path socket) throws IOException, RpcError {
        return map(call("controller_remove", Map.of("socket", socket.toString())));
    }

    /** {@code namespace_list} of a controller. */
    public List<Map<String, Object>> namespaceList(Path controller) throws IOException, RpcError {
        return maps(map(call("namespace_list", Map.of("controller", controller.toString()))).get("namespaces"));
    }

    /** {@code namespace_add} at the lowest free NSID; the result ({@code nsid}, {@code size_bytes}, ...). */
    /** Named parameters in the order given (key, value, ...), so a request's bytes are the same every run. */
    private static Map<String, Object> params(Object... keysAndValues) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < keysAndValues.length; i += 2) {
            m.put((String) keysAndValues[i], keysAndValues[i + 1]);
        }
        return m;
    }

    public Map<String, Object> namespaceAdd(Path controller, String namespace) throws IOException, RpcError {
        return map(call("namespace_add", params("controller", controller.toString(), "namespace", namespace)));
    }

    /** {@code namespace_add} at a chosen NSID. */
    public Map<String, Object> namespaceAdd(Path controller, String namespace, long nsid) throws IOException, RpcError {
        return map(call("namespace_add", params("controller", controller.toString(), "namespace", namespace, "nsid", nsid)));
    }

    /** {@code namespace_remove}. */
    public Map<String, Object> namespaceRemove(Path controller, long nsid) throws IOException, RpcError {
        return map(call("namespace_remove", params("controller", controller.toString(), "nsid", nsid)));
    }

    /** {@code namespace_resize} to {@code size}: a {@code Long} of bytes or a size string such as {@code "48M"}. */
    public Map<String, Object> namespaceResize(Path controller, long nsid, Object size) throws IOException, RpcError {
        return map(call("namespace_resize", params("controller", controller.toString(), "nsid", nsid, "size", size)));
    }

    /** {@code stats_get} of one controller, in JSON. */
    public ControllerStats statsGet(Path controller) throws IOException, RpcError {
        List<Map<String, Object>> all = maps(map(call("stats_get", Map.of("controller", controller.toString())))
                .get("controllers"));
        if (all.size() != 1) {
            throw new AssertionError("stats_get of one controller answered " + all.size() + " entries: " + all);
        }
        return new ControllerStats(all.getFirst());
    }

    /** {@code stats_get} of every controller, in JSON. */
    public List<ControllerStats> statsGet() throws IOException, RpcError {
        return maps(map(call("stats_get", Map.of())).get("controllers")).stream().map(ControllerStats::new).toList();
    }

    /** {@code server_shutdown}: answered before the clean shutdown begins. */
    public Map<String, Object> serverShutdown() throws IOException, RpcError {
        return map(call("server_shutdown", null));
    }

    /**
     * One controller's entry of {@code stats_get}: {@code device} holds the device-wide counters (NVMe:
     * {@code io.commands}, {@code doorbell.mmio.sq}, {@code interrupts}, ...), {@code queues} and {@code namespaces}
     * the per-instance ones by instance number.
     */
    public record ControllerStats(Map<String, Object> raw) {
        public String socket() {
            return String.valueOf(raw.get("socket"));
        }

        /** A device-wide counter; 0 if the device does not report it. */
        public long device(String key) {
            return raw.get("device") instanceof Map<?, ?> device && device.get(key) instanceof Number n ? n.longValue() : 0;
        }

        /** The server's counter {@code key} for this controller (e.g. {@code clients.connected}); 0 if absent. */
        public long server(String key) {
            return raw.get("server") instanceof Map<?, ?> server && server.get(key) instanceof Number n ? n.longValue() : 0;
        }

        /** Per-queue counters: queue number → counter name → value. */
        public Map<String, Map<String, Object>> queues() {
            return instances("queues");
        }

        /** Per-namespace counters: NSID → counter name → value. */
        public Map<String, Map<String, Object>> namespaces() {
            return instances("namespaces");
        }

        /** The sum of counter {@code key} over every queue. */
        public long queueTotal(String key) {
            long sum = 0;
            for (Map<String, Object> q : queues().values()) {
                if (q.get(key) instanceof Number n) {
                    sum += n.longValue();
                }
            }
            return sum;
        }

        private Map<String, Map<String, Object>> instances(String kind) {
            Map<String, Map<String, Object>> out = new LinkedHashMap<>();
            if (raw.get(kind) instanceof Map<?, ?> m) {
                m.forEach((k, v) -> out.put(String.valueOf(k), map(v)));
            }
            return out;
        }
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> map(Object value) {
        if (!(value instanceof Map<?, ?>)) {
            throw new AssertionError("expected a JSON object, got " + value);
        }
        return (Map<String, Object>) value;
    }

    static List<Map<String, Object>> maps(Object value) {
        if (!(value instanceof List<?> list)) {
            throw new AssertionError("expected a JSON array, got " + value);
        }
        List<Map<String, Object>> out = new ArrayList<>();
        list.forEach(v -> out.add(map(v)));
        return out;
    }

    /** The JSON text of a value built from maps, lists, strings, numbers, booleans and null (RFC 8259). */
    public static String json(Object value) {
        StringBuilder sb = new StringBuilder();
        write(sb, value);
        return sb.toString();
    }

    private static void write(StringBuilder sb, Object value) {
        switch (value) {
            case null -> sb.append("null");
            case String s -> quote(sb, s);
            case Boolean b -> sb.append(b);
            case Long l -> sb.append(l);
            case Integer i -> sb.append(i);
            case Number n -> sb.append(n.toString());
            case Map<?, ?> m -> {
                sb.append('{');
                boolean first = true;
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    if (!first) {
                        sb.append(',');
                    }
                    first = false;
                    quote(sb, String.valueOf(e.getKey()));
                    sb.append(':');
                    write(sb, e.getValue());
                }
                sb.append('}');
            }
            case List<?> l -> {
                sb.append('[');
                for (int i = 0; i < l.size(); i++) {
                    if (i > 0) {
                        sb.append(',');
                    }
                    write(sb, l.get(i));
                }
                sb.append(']');
            }
            default -> throw new IllegalArgumentException("not a JSON value: " + value.getClass());
        }
    }

    private static void quote(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c < 0x20) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
