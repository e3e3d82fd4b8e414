package io.javadevices.vfiouser.rpc;

import io.javadevices.vfiouser.client.ForeignUid;
import io.javadevices.vfiouser.protocol.MiniJson;
import io.javadevices.vfiouser.sys.ErrnoException;
import io.javadevices.vfiouser.sys.FileIdentity;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import static org.junit.jupiter.api.Assertions.*;

/** The control plane's wire rules over the real socket: framing, JSON-RPC errors, several clients, the peer check. */
@Timeout(30)
class RpcWireTest {
    @TempDir
    Path dir;
    private RpcFixture rpc;

    @BeforeEach
    void start() throws Exception {
        rpc = new RpcFixture(dir);
    }

    @AfterEach
    void stop() {
        rpc.close();
    }

    private static Map<?, ?> parse(String line) {
        assertNotNull(line, "an answer line");
        return (Map<?, ?>) MiniJson.parseStrict(line);
    }

    /** Sends one raw line and returns the error code of its answer, asserting the echoed id. */
    private static long errorCode(RpcClient c, String line, Object expectedId) throws IOException {
        c.sendLine(line);
        Map<?, ?> response = parse(c.readLine());
        assertEquals("2.0", response.get("jsonrpc"));
        assertTrue(response.containsKey("id"), "an error answer always has an id member");
        assertEquals(expectedId, response.get("id"));
        assertFalse(response.containsKey("result"));
        Map<?, ?> error = (Map<?, ?>) response.get("error");
        assertFalse(((String) error.get("message")).isBlank());
        return (Long) error.get("code");
    }

    /**
     * The server closed the connection: end of stream, or ECONNRESET when it closed with bytes of ours unread
     * (Linux unix_release_sock sets the peer's error then, reported once the answers before it are read).
     */
    private static void assertClosed(RpcClient c, String why) {
        try {
            assertNull(c.readLine(), why);
        } catch (IOException e) {
            assertTrue(e.getMessage().contains("ECONNRESET"), why + ": " + e);
        }
    }

    @Test
    void malformedAndInvalidRequestsGetTheirErrorsAndTheConnectionGoesOn() throws Exception {
        try (RpcClient c = rpc.client()) {
            assertEquals(-32700, errorCode(c, "{\"jsonrpc\":\"2.0\",", null), "malformed JSON");
            assertEquals(-32700, errorCode(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"controller_list\"}",
                    null), "duplicate key");
            assertEquals(-32700, errorCode(c, "{\"jsonrpc\":\"2.0\",\"id\":1" + "0".repeat(100) + ",\"method\":\"x\"}",
                    null), "huge number");
            assertEquals(-32700, errorCode(c, "[".repeat(5000), null), "deep nesting");
            assertEquals(-32700, errorCode(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\u0000\"}", null), "raw NUL");
            assertEquals(-32600, errorCode(c, "42", null), "not an object");
            assertEquals(-32600, errorCode(c, "\"controller_list\"", null), "not an object");
            assertEquals(-32600, errorCode(c, "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"controller_list\"}]", null),
                    "batch");
            assertEquals(-32600, errorCode(c, "{\"jsonrpc\":\"1.0\",\"id\":7,\"method\":\"controller_list\"}", 7L),
                    "wrong jsonrpc");
            assertEquals(-32600, errorCode(c, "{\"id\":\"a\",\"method\":\"controller_list\"}", "a"), "no jsonrpc");
            assertEquals(-32600, errorCode(c, "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":5}", 8L), "method not a string");
            assertEquals(-32600, errorCode(c, "{\"jsonrpc\":\"2.0\",\"id\":9}", 9L), "no method");
            assertEquals(-32600, errorCode(c, "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"stats_get\",\"params\":[1]}",
                    10L), "positional params");
            assertEquals(-32600, errorCode(c, "{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"controller_list\"}", null),
                    "an object id");
            assertEquals(-32600, errorCode(c, "{\"jsonrpc\":\"2.0\",\"id\":11,\"method\":\"controller_list\",\"x\":1}",
                    11L), "unknown member");
            assertEquals(-32601, errorCode(c, "{\"jsonrpc\":\"2.0\",\"id\":12,\"method\":\"rm -rf\"}", 12L));
            // the connection still works, answers in order, with the id echoed as sent
            c.sendLine("{\"jsonrpc\":\"2.0\",\"id\":\"x\u00e9\",\"method\":\"controller_list\"}");
            c.sendLine("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"controller_list\"}\r");
            c.sendLine("   ");
            c.sendLine("{\"jsonrpc\":\"2.0\",\"id\":2.5,\"method\":\"controller_list\",\"params\":{}}");
            assertEquals("x\u00e9", parse(c.readLine()).get("id"));
            Map<?, ?> second = parse(c.readLine());
            assertTrue(second.containsKey("id") && second.get("id") == null);
            assertEquals(Map.of("controllers", List.of()), second.get("result"), "CRLF is accepted");
            assertEquals(2.5, parse(c.readLine()).get("id"), "a blank line gets no answer");
        }
        assertEquals(0, rpc.host.controllers().size(), "nothing changed");
    }

    @Test
    void invalidUtf8AndSentFdsAreRefusedCleanly() throws Exception {
        try (RpcClient c = rpc.client()) {
            byte[] line = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\u00ffcontroller_list\"}\n"
                    .getBytes(StandardCharsets.ISO_8859_1); // 0xFF: never valid in UTF-8
            c.sendRaw(line);
            Map<?, ?> response = parse(c.readLine());
            assertEquals(-32700L, ((Map<?, ?>) response.get("error")).get("code"));
            assertTrue(((String) ((Map<?, ?>) response.get("error")).get("message")).contains("UTF-8"));
            byte[] overlong = {'"', (byte) 0xC0, (byte) 0x80, '"', '\n'}; // an overlong NUL
            c.sendRaw(overlong);
            assertEquals(-32700L, ((Map<?, ?>) parse(c.readLine()).get("error")).get("code"));
            assertEquals(List.of(), c.call("controller_list", Map.of()).get("result") instanceof Map<?, ?> m
                    ? m.get("controllers") : null);
        }
    }

    @Test
    void notificationsAreExecutedAndNotAnswered() throws Exception {
        try (RpcClient c = rpc.client()) {
            c.sendLine("{\"jsonrpc\":\"2.0\",\"method\":\"controller_add\",\"params\":{\"socket\":\""
                    + rpc.sock("n.sock") + "\",\"device\":\"dma-copy\"}}");
            c.sendLine("{\"jsonrpc\":\"2.0\",\"method\":\"no_such_method\"}");
            c.sendLine("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"controller_list\"}");
            Map<?, ?> response = parse(c.readLine());
            assertEquals(3L, response.get("id"), "the first answer is the request's: the notifications got none");
            assertEquals(1, ((List<?>) ((Map<?, ?>) response.get("result")).get("controllers")).size(),
                    "the notification was executed");
        }
    }

    @Test
    void anOversizedLineIsAnsweredThenClosedAndOthersAreStillServed() throws Exception {
        try (RpcClient other = rpc.client(); RpcClient big = rpc.client()) {
            byte[] chunk = new byte[64 * 1024];
            Arrays.fill(chunk, (byte) ' ');
            chunk[0] = '{';
            try {
                for (int i = 0; i <= RpcCodec.MAX_LINE_BYTES / chunk.length; i++) {
                    big.sendRaw(chunk);
                    chunk[0] = ' ';
                }
                big.sendRaw(" \"x\":1}\n".getBytes(StandardCharsets.US_ASCII));
            } catch (ErrnoException closedMeanwhile) {
                // the server may close before all of it is written
            }
            Map<?, ?> response = parse(big.readLine());
            Map<?, ?> error = (Map<?, ?>) response.get("error");
            assertEquals(-32600L, error.get("code"));
            assertEquals("request line longer than 1048576 bytes", error.get("message"));
            assertClosed(big, "then the connection closes");
            assertNotNull(other.call("controller_list", Map.of()).get("result"), "another client is still served");
        }
        assertEquals(1L, rpc.server.counters().get("lines.oversized"));
        assertNotNull(rpc.call("controller_list", Map.of()).get("result"), "and new clients too");
    }

    @Test
    void aLineOfExactlyTheLimitIsRead() throws Exception {
        String head = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"controller_list\"";
        String line = head + " ".repeat(RpcCodec.MAX_LINE_BYTES - head.length() - 1) + "}";
        assertEquals(RpcCodec.MAX_LINE_BYTES, line.length());
        try (RpcClient c = rpc.client()) {
            c.sendLine(line);
            assertEquals(1L, parse(c.readLine()).get("id"));
        }
    }

    @Test
    void severalClientsAtOnceAreAllServed() throws Exception {
        int n = 8;
        List<Thread> threads = new ArrayList<>();
        List<Throwable> failures = new ArrayList<>();
        CountDownLatch go = new CountDownLatch(1);
        for (int i = 0; i < n; i++) {
            String socket = rpc.sock("c" + i + ".sock");
            threads.add(Thread.ofPlatform().start(() -> {
                try (RpcClient c = rpc.client()) {
                    go.await();
                    Map<?, ?> r = c.call("controller_add", Map.of("socket", socket, "device", "dma-copy"));
                    assertNotNull(r.get("result"), r.toString());
                    for (int k = 0; k < 20; k++) {
                        assertNotNull(c.call("controller_list", Map.of()).get("result"));
                    }
                } catch (Throwable t) {
                    synchronized (failures) {
                        failures.add(t);
                    }
                }
            }));
        }
        go.countDown();
        for (Thread t : threads) {
            t.join();
        }
        assertEquals(List.of(), failures);
        assertEquals(n, rpc.host.controllers().size());
        assertTrue(rpc.server.counters().get("clients.total") >= n);
    }

    /** A client that sends and never reads blocks only its own session: the lock is not held while writing. */
    @Test
    void aClientThatNeverReadsWedgesNothing() throws Exception {
        for (int i = 0; i < 4; i++) {
            rpc.ok("controller_add", Map.of("socket", rpc.sock("s" + i + ".sock"), "device", "dma-copy"));
        }
        RpcClient stuck = rpc.client();
        String request = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"stats_get\"}\n";
        byte[] many = request.repeat(200).getBytes(StandardCharsets.US_ASCII);
        Thread writer = Thread.ofPlatform().daemon().name("never-reads").start(() -> {
            try {
                for (int i = 0; i < 100; i++) { // ~20000 answers of a few KiB: far more than the socket buffers
                    stuck.sendRaw(many);
                }
            } catch (IOException expected) {
                // the server shuts the connection down at close
            }
        });
        long deadline = System.nanoTime() + 10_000_000_000L;
        long before = rpc.server.counters().get("requests");
        Thread.sleep(200);
        while (rpc.server.counters().get("requests") != before && System.nanoTime() < deadline) {
            before = rpc.server.counters().get("requests"); // until the stuck session is blocked writing
            Thread.sleep(100);
        }
        assertTrue(writer.isAlive(), "the writer is blocked: the session stopped reading because it cannot write");
        for (int i = 0; i < 5; i++) {
            assertNotNull(rpc.call("controller_list", Map.of()).get("result"), "other clients are served");
        }
        rpc.ok("controller_remove", Map.of("socket", rpc.sock("s0.sock")));
        rpc.server.close(); // returns: the stuck session is shut down, not waited for forever
        writer.join(10_000);
        assertFalse(writer.isAlive());
        stuck.close();
    }

    @Test
    void moreThanTheClientLimitAreRefusedAndTheRestServed() throws Exception {
        List<RpcClient> open = new ArrayList<>();
        try {
            for (int i = 0; i < RpcServer.MAX_CLIENTS; i++) {
                RpcClient c = rpc.client();
                open.add(c);
                assertNotNull(c.call("controller_list", Map.of()).get("result")); // admitted before the next
            }
            try (RpcClient extra = rpc.client()) {
                assertClosed(extra, "closed at once");
            }
            assertEquals(1L, rpc.server.counters().get("clients.refused"));
            assertNotNull(open.get(0).call("controller_list", Map.of()).get("result"));
        } finally {
            open.forEach(RpcClient::close);
        }
    }

    @Test
    void theSocketIsMode0600AndOnlyAStaleOneIsReplaced() throws Exception {
        Path path = rpc.server.path();
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(path)));
        RpcMethods methods = new RpcMethods(rpc.host);
        assertThrows(IOException.class, () -> RpcServer.start(path, null, methods), "a live control socket");
        rpc.server.close();
        assertFalse(Files.exists(path), "close removes the socket");
        RpcMethodsTest.deadSocket(path);
        try (RpcServer again = RpcServer.start(path, null, methods); RpcClient c = RpcClient.connect(path)) {
            assertNotNull(c.call("controller_list", Map.of()).get("result"), "a stale socket is replaced");
        }
        Path file = dir.resolve("plain");
        Files.writeString(file, "x");
        assertThrows(IOException.class, () -> RpcServer.start(file, null, methods), "not a socket");
        assertEquals("x", Files.readString(file));
    }

    @Test
    void aForeignUidIsRefusedBeforeAnyAnswer() throws Exception {
        Assumptions.assumeTrue(ForeignUid.available(), "needs root to connect as another uid");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx--x--x"));
        Files.setPosixFilePermissions(rpc.server.path(), PosixFilePermissions.fromString("rw-rw-rw-")); // past the mode
        Object answer = ForeignUid.call(ForeignUid.NOBODY, () -> {
            try (RpcClient c = rpc.client()) {
                try {
                    c.sendLine("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"controller_list\"}");
                } catch (ErrnoException closed) {
                    return "closed";
                }
                try {
                    return String.valueOf(c.readLine());
                } catch (IOException reset) {
                    return "closed";
                }
            }
        });
        assertTrue(answer.equals("null") || answer.equals("closed"), "no answer: " + answer);
        assertEquals(1L, rpc.server.counters().get("clients.denied"));
        assertNotNull(rpc.call("controller_list", Map.of()).get("result"), "the server's own uid is still served");
    }

    @Test
    void anExplicitUidListAdmitsThatUser() throws Exception {
        Assumptions.assumeTrue(ForeignUid.available(), "needs root to connect as another uid");
        rpc.close();
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx--x--x"));
        rpc = new RpcFixture(dir, new int[] {ForeignUid.NOBODY});
        Files.setPosixFilePermissions(rpc.server.path(), PosixFilePermissions.fromString("rw-rw-rw-"));
        Object result = ForeignUid.call(ForeignUid.NOBODY, () -> rpc.call("controller_list", Map.of()).get("result"));
        assertEquals(Map.of("controllers", List.of()), result);
        assertTrue(FileIdentity.geteuid() == 0);
    }
}
