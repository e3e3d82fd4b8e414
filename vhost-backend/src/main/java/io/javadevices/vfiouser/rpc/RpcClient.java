package io.javadevices.vfiouser.rpc;

import io.javadevices.vfiouser.protocol.MiniJson;
import io.javadevices.vfiouser.sys.ErrnoException;
import io.javadevices.vfiouser.transport.UnixSocket;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * A control-plane client: one connection, one request line, one response line (what {@code nvme-server rpc} and
 * the tests use). The response may be long (the statistics of many controllers): up to
 * {@value #MAX_RESPONSE_BYTES} bytes are read. One thread may send while another reads.
 */
public final class RpcClient implements AutoCloseable {
    static final int MAX_RESPONSE_BYTES = 64 << 20;

    private final UnixSocket socket;
    private final Arena arena = Arena.ofShared(); // one thread may send while another reads
    private final MemorySegment in = arena.allocate(64 * 1024);
    private MemorySegment out;
    private final ByteArrayOutputStream pending = new ByteArrayOutputStream();
    private long nextId = 1;

    private RpcClient(UnixSocket socket) {
        this.socket = socket;
    }

    /** Connects to the control plane on {@code path}. */
    public static RpcClient connect(Path path) throws IOException {
        return new RpcClient(UnixSocket.connect(path, 0, 0));
    }

    /** Sends {@code line} (a line feed is added) as it is. */
    public void sendLine(String line) throws IOException {
        byte[] bytes = (line + "\n").getBytes(StandardCharsets.UTF_8);
        sendRaw(bytes);
    }

    /** Sends raw bytes. */
    public synchronized void sendRaw(byte[] bytes) throws IOException {
        if (out == null || out.byteSize() < bytes.length) {
            out = arena.allocate(Math.max(4096, bytes.length));
        }
        MemorySegment.copy(bytes, 0, out, JAVA_BYTE, 0, bytes.length);
        socket.send(out, 0, bytes.length, null, 0);
    }

    /** The next response line (without its line feed), or null at end of stream. */
    public String readLine() throws IOException {
        while (true) {
            byte[] have = pending.toByteArray();
            for (int i = 0; i < have.length; i++) {
                if (have[i] == '\n') {
                    pending.reset();
                    pending.write(have, i + 1, have.length - i - 1);
                    return new String(have, 0, i, StandardCharsets.UTF_8);
                }
            }
            if (have.length > MAX_RESPONSE_BYTES) {
                throw new IOException("response longer than " + MAX_RESPONSE_BYTES + " bytes");
            }
            long n;
            try {
                n = socket.receive(in, 0, in.byteSize(), false);
            } catch (ErrnoException e) {
                throw new IOException("reading the response: " + e.getMessage(), e);
            }
            if (n <= 0) {
                return null;
            }
            pending.write(in.asSlice(0, n).toArray(JAVA_BYTE), 0, (int) n);
        }
    }

    /**
     * Calls {@code method} with {@code params} and returns the parsed response object ({@code result} or
     * {@code error} inside).
     *
     * @throws IOException if the connection fails or the server closes it without an answer
     */
    public Map<?, ?> call(String method, Map<String, Object> params) throws IOException {
        Map<String, Object> request = new LinkedHashMap<>();
        request.put("jsonrpc", "2.0");
        request.put("id", nextId++);
        request.put("method", method);
        request.put("params", params);
        sendLine(JsonWriter.compact(request));
        String line = readLine();
        if (line == null) {
            throw new IOException("the server closed the connection without answering");
        }
        try {
            if (MiniJson.parseStrict(line) instanceof Map<?, ?> response) {
                return response;
            }
        } catch (IllegalArgumentException e) {
            throw new IOException("the server's answer is not JSON: " + e.getMessage(), e);
        }
        throw new IOException("the server's answer is not a JSON object");
    }

    @Override
    public void close() {
        socket.close();
        arena.close();
    }
}
