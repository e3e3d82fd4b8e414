package io.javadevices.qemutests.harness;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The end-to-end tests' control-plane client against a scripted peer on a real Unix socket: the request lines it
 * writes (one JSON object per line, with {@code jsonrpc}, {@code id}, {@code method}, {@code params}), and how it
 * reads a result, an error and a connection closed mid-line. No QEMU, no server: quick, part of {@code mvn test}.
 */
class RpcClientTest {
    @TempDir
    Path dir;

    /** Answers each request line with the next canned line (or closes when there is none) and keeps the requests. */
    private List<String> serve(Path socket, String... answers) throws IOException {
        ServerSocketChannel listener = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        listener.bind(UnixDomainSocketAddress.of(socket));
        List<String> requests = new ArrayList<>();
        Thread.ofPlatform().daemon().start(() -> {
            try (listener; SocketChannel peer = listener.accept()) {
                BufferedReader in = new BufferedReader(new InputStreamReader(Channels.newInputStream(peer), StandardCharsets.UTF_8));
                OutputStream out = Channels.newOutputStream(peer);
                for (String answer : answers) {
                    String line = in.readLine();
                    if (line == null) {
                        return;
                    }
                    synchronized (requests) {
                        requests.add(line);
                    }
                    out.write(answer.getBytes(StandardCharsets.UTF_8));
                    out.flush();
                }
            } catch (IOException ignored) {
                // the client went away
            }
        });
        return requests;
    }

    @Test
    void writesOneRequestPerLineAndReturnsTheResult() throws Exception {
        Path socket = dir.resolve("rpc.sock");
        List<String> requests = serve(socket,
                "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"nsid\":2,\"size_bytes\":33554432,\"block_size\":512}}\n");
        try (RpcClient rpc = RpcClient.connect(socket)) {
            Map<String, Object> added = rpc.namespaceAdd(Path.of("/run/vm \"1\".sock"), "ram:32M");
            assertEquals(Map.of("nsid", 2L, "size_bytes", 33554432L, "block_size", 512L), added);
        }
        assertEquals(List.of("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"namespace_add\",\"params\":"
                + "{\"controller\":\"/run/vm \\\"1\\\".sock\",\"namespace\":\"ram:32M\"}}"), requests);
    }

    @Test
    void anErrorAnswerBecomesRpcErrorWithItsCode() throws Exception {
        Path socket = dir.resolve("rpc.sock");
        serve(socket, "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32602,\"message\":\"unknown controller\"}}\n");
        try (RpcClient rpc = RpcClient.connect(socket)) {
            RpcClient.RpcError e = assertThrows(RpcClient.RpcError.class, () -> rpc.namespaceRemove(Path.of("/x.sock"), 2));
            assertEquals(-32602, e.code());
            assertTrue(e.getMessage().contains("unknown controller"), e.getMessage());
        }
    }

    @Test
    void anAnswerToAnotherIdOrAClosedConnectionIsAFailureNotAResult() throws Exception {
        Path socket = dir.resolve("rpc.sock");
        serve(socket, "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n", "{\"jsonrpc\":\"2.0\",\"id\":2,\"res");
        try (RpcClient rpc = RpcClient.connect(socket)) {
            assertThrows(IllegalStateException.class, () -> rpc.call("controller_list", null));
            IOException closed = assertThrows(IOException.class, () -> rpc.call("controller_list", null));
            assertTrue(closed.getMessage().contains("in the middle of a line"), closed.getMessage());
        }
    }

    @Test
    void jsonWriterEscapesControlCharactersAndNestsMapsAndLists() {
        Map<String, Object> value = new LinkedHashMap<>();
        value.put("a", Arrays.asList(1, true, null, "x\ny\u0001"));
        value.put("b", Map.of());
        assertEquals("{\"a\":[1,true,null,\"x\\ny\\u0001\"],\"b\":{}}", RpcClient.json(value));
    }
}
