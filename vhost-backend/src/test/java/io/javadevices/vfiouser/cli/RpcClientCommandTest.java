package io.javadevices.vfiouser.cli;

import io.javadevices.vfiouser.host.ControllerDefaults;
import io.javadevices.vfiouser.host.ControllerHost;
import io.javadevices.vfiouser.protocol.MiniJson;
import io.javadevices.vfiouser.rpc.RpcClient;
import io.javadevices.vfiouser.rpc.RpcMethods;
import io.javadevices.vfiouser.rpc.RpcServer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.*;

/** {@code nvme-server rpc} end to end against a real control plane, and ServerMain with --rpc-socket. */
@Timeout(30)
class RpcClientCommandTest {
    @TempDir
    Path dir;



    @Test
    void callsPrintTheResultAsPrettyJsonAndErrorsExitWith1() throws Exception {
        try (ControllerHost host = ControllerHost.withInstalledPlugins(ControllerDefaults.standard(), null);
             RpcServer server = RpcServer.start(dir.resolve("c.rpc"), null, new RpcMethods(host))) {
            String rpc = server.path().toString();
            String vm = dir.resolve("vm.sock").toString();
            CliRun add = CliRun.of("rpc", "--rpc-socket", rpc, "controller_add", "socket=" + vm, "namespaces=ram:1M",
                    "namespaces=null:1M", "queues=2", "options={\"dbbuf\":\"off\"}");
            assertEquals(0, add.code(), add.err());
            assertEquals("{\n  \"socket\": \"" + vm + "\",\n  \"device\": \"nvme\"\n}\n", add.out());
            assertEquals("", add.err());
            assertEquals(1, host.controllers().size());

            CliRun list = CliRun.of("rpc", "--rpc-socket", rpc, "controller_list");
            assertEquals(0, list.code(), list.err());
            Map<?, ?> result = (Map<?, ?>) MiniJson.parseStrict(list.out());
            Map<?, ?> entry = (Map<?, ?>) ((List<?>) result.get("controllers")).get(0);
            assertEquals(vm, entry.get("socket"));
            assertTrue(list.out().contains("\n  \"controllers\": [\n"), "indented:\n" + list.out());

            CliRun missing = CliRun.of("rpc", "--rpc-socket", rpc, "controller_remove", "socket=" + dir.resolve("no.sock"));
            assertEquals(1, missing.code());
            assertEquals("", missing.out());
            assertTrue(missing.err().contains("no controller on socket") && missing.err().contains("-32602"),
                    missing.err());

            CliRun unknown = CliRun.of("rpc", "--rpc-socket", rpc, "frobnicate");
            assertEquals(1, unknown.code());
            assertTrue(unknown.err().contains("method not found"), unknown.err());

            CliRun removed = CliRun.of("rpc", "--rpc-socket", rpc, "controller_remove", "socket=" + vm);
            assertEquals(0, removed.code(), removed.err());
            assertTrue(removed.out().contains("\"flushed\": true"), removed.out());
            assertEquals(0, host.controllers().size());
        }
    }

    @Test
    void badUsageExitsWith2AndNoServerWith1() {
        String rpc = dir.resolve("none.rpc").toString();
        assertEquals(2, CliRun.of("rpc", "--rpc-socket", rpc).code(), "no method");
        assertEquals(2, CliRun.of("rpc", "--rpc-socket", rpc, "controller_add", "socket").code(), "not KEY=VALUE");
        assertEquals(2, CliRun.of("rpc", "--rpc-socket", rpc, "controller_add", "=x").code(), "empty key");
        assertEquals(2, CliRun.of("rpc", "--bogus", "controller_list").code());
        if (System.getenv(RpcClientCommand.SOCKET_VARIABLE) == null) {
            CliRun noSocket = CliRun.of("rpc", "controller_list");
            assertEquals(2, noSocket.code());
            assertTrue(noSocket.err().contains(RpcClientCommand.SOCKET_VARIABLE), noSocket.err());
        }
        CliRun refused = CliRun.of("rpc", "--rpc-socket", rpc, "controller_list");
        assertEquals(1, refused.code(), "no server listening");
        assertTrue(refused.err().contains(rpc), refused.err());
        assertEquals(0, CliRun.of("rpc", "--help").code());
    }

    @Test
    void theServersHelpNamesTheControlPlane() {
        CliRun help = CliRun.of("--help");
        assertEquals(0, help.code());
        assertTrue(help.out().contains("--rpc-socket=PATH"), help.out());
        assertTrue(help.out().contains("Commands:") && help.out().contains("  rpc "), help.out());
        CliRun rpcHelp = CliRun.of("rpc", "--help");
        assertTrue(rpcHelp.out().contains("METHOD") && rpcHelp.out().contains("KEY=VALUE"), rpcHelp.out());
    }

    @Test
    void valuesAreJsonWhenTheyParseAndStringsOtherwise() {
        CommandLine cli = new CommandLine(new RpcClientCommand());
        Map<String, Object> p = RpcClientCommand.params(cli, List.of("n=12", "b=true", "z=null", "s=ram:1G",
                "q=\"12\"", "a=[1,\"x\"]", "o={\"k\":\"v\"}", "bad={x", "e=", "eq=a=b", "r=1", "r=two", "r=[3]"));
        assertEquals(12L, p.get("n"));
        assertEquals(true, p.get("b"));
        assertTrue(p.containsKey("z") && p.get("z") == null);
        assertEquals("ram:1G", p.get("s"));
        assertEquals("12", p.get("q"));
        assertEquals(List.of(1L, "x"), p.get("a"));
        assertEquals(Map.of("k", "v"), p.get("o"));
        assertEquals("{x", p.get("bad"));
        assertEquals("", p.get("e"));
        assertEquals("a=b", p.get("eq"), "only the first '=' splits");
        assertEquals(List.of(1L, "two", List.of(3L)), p.get("r"), "a repeated key is an array of its values");
    }

    /** Runs the server on a thread of its own (not the common pool, which one hung server would block). */
    private static CompletableFuture<CliRun> serve(String... args) {
        return CompletableFuture.supplyAsync(() -> CliRun.of(args), r -> Thread.ofPlatform().daemon().name("server-under-test")
                .start(r));
    }

    /** Connects once the server listens (its socket file appears just before listen(2)); fails if it exited. */
    private static RpcClient connectWhenUp(Path path, CompletableFuture<CliRun> server) throws Exception {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (true) {
            if (server.isDone()) {
                throw new AssertionError("the server exited: " + server.get());
            }
            try {
                return RpcClient.connect(path);
            } catch (java.io.IOException notYet) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError(path + " never listened", notYet);
                }
                Thread.sleep(10);
            }
        }
    }

    @Test
    void theServerWithAControlPlaneServesUntilServerShutdown() throws Exception {
        Path rpc = dir.resolve("server.rpc");
        Path first = dir.resolve("first.sock");
        CompletableFuture<CliRun> server = serve("--rpc-socket", rpc.toString(), "--socket", first.toString(),
                "--namespace", "ram:1M");
        try (RpcClient c = connectWhenUp(rpc, server)) {
            Map<?, ?> list = (Map<?, ?>) c.call("controller_list", Map.of()).get("result");
            List<?> controllers = (List<?>) list.get("controllers");
            assertEquals(1, controllers.size(), "--socket made the first controller");
            assertEquals(first.toString(), ((Map<?, ?>) controllers.get(0)).get("socket"));
            assertNotNull(c.call("controller_add", Map.of("socket", dir.resolve("second.sock").toString(),
                    "namespaces", List.of("ram:1M"))).get("result"));
            assertEquals(Map.of("shutting_down", true), c.call("server_shutdown", Map.of()).get("result"));
        }
        CliRun r = server.get();
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("serving nvme on " + first), r.out());
        assertTrue(r.out().contains("control plane (JSON-RPC) on " + rpc), r.out());
        assertFalse(Files.exists(rpc), "sockets removed");
        assertFalse(Files.exists(first));
        assertFalse(Files.exists(dir.resolve("second.sock")));
    }

    @Test
    void withOnlyAControlPlaneTheServerStartsWithoutControllers() throws Exception {
        Path rpc = dir.resolve("only.rpc");
        CompletableFuture<CliRun> server = serve("--rpc-socket", rpc.toString());
        try (RpcClient c = connectWhenUp(rpc, server)) {
            assertEquals(Map.of("controllers", List.of()), c.call("controller_list", Map.of()).get("result"));
            c.call("server_shutdown", Map.of());
        }
        assertEquals(0, server.get().code());
        assertEquals(2, CliRun.of("--rpc-socket", rpc.toString(), "--namespace", "ram:1M").code(),
                "device options without --socket");
    }
}
