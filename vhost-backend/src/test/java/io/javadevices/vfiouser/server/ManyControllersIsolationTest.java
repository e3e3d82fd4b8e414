package io.javadevices.vfiouser.server;

import io.javadevices.vfiouser.client.TestClient;
import io.javadevices.vfiouser.client.TestClient.Memfd;
import io.javadevices.vfiouser.host.Controller;
import io.javadevices.vfiouser.host.ControllerDefaults;
import io.javadevices.vfiouser.host.ControllerHost;
import io.javadevices.vfiouser.host.ControllerSpec;
import io.javadevices.vfiouser.rpc.RpcClient;
import io.javadevices.vfiouser.rpc.RpcMethods;
import io.javadevices.vfiouser.rpc.RpcServer;
import io.javadevices.vfiouser.sys.ErrnoException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.CMD_DEVICE_RESET;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.FLAG_TYPE_COMMAND;
import static io.javadevices.vfiouser.server.NvmeSocketDriver.BUF;
import static io.javadevices.vfiouser.server.NvmeSocketDriver.RAM_BASE;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Two real NVMe controllers in one {@link ControllerHost}: one client's garbage, crash mid-I/O, reset and its
 * controller's removal never disturb the other controller's client, whose writes and reads keep verifying.
 */
@Timeout(60)
class ManyControllersIsolationTest {
    @TempDir
    Path dir;

    private static final int WRITE = 0x01, READ = 0x02;
    private static final long WRITE_BUF = BUF, READ_BUF = BUF + 0x1000;

    private static ControllerSpec nvme(Path socket) {
        return new ControllerSpec(socket, "nvme", Map.of("namespaces", "ram:1M"));
    }

    /** Writes a block with a pattern, reads it back into another buffer and compares: the count of verified I/Os. */
    private static long verifyingIo(NvmeSocketDriver d, AtomicBoolean stop) throws IOException {
        long verified = 0;
        for (int round = 0; !stop.get() || verified < 50; round++) {
            long lba = round % 256;
            MemorySegment w = d.at(WRITE_BUF).asSlice(0, 512);
            for (int i = 0; i < 512; i++) {
                w.set(JAVA_BYTE, i, (byte) (round * 31 + i));
            }
            assertEquals(0, d.io(WRITE, RAM_BASE + WRITE_BUF, lba), "write status");
            d.at(READ_BUF).asSlice(0, 512).fill((byte) 0);
            assertEquals(0, d.io(READ, RAM_BASE + READ_BUF, lba), "read status");
            assertEquals(-1, w.mismatch(d.at(READ_BUF).asSlice(0, 512)), "read back what was written");
            verified++;
        }
        return verified;
    }

    @Test
    void oneControllersHostileOrCrashingClientNeverDisturbsTheOther() throws Exception {
        try (ControllerHost host = ControllerHost.withInstalledPlugins(ControllerDefaults.standard(), null);
             Memfd ramA = new Memfd(1 << 20); Memfd ramB = new Memfd(1 << 20)) {
            Controller a = host.add(nvme(dir.resolve("a.sock")));
            Controller b = host.add(nvme(dir.resolve("b.sock")));
            AtomicBoolean stop = new AtomicBoolean();
            try (TestClient clientA = TestClient.connect(a.socket())) {
                NvmeSocketDriver driverA = new NvmeSocketDriver(clientA, ramA);
                driverA.bringUp(false);
                CompletableFuture<Long> ioA = CompletableFuture.supplyAsync(() -> {
                    try {
                        return verifyingIo(driverA, stop);
                    } catch (IOException e) {
                        throw new RuntimeException(e);
                    }
                }, r -> Thread.ofPlatform().name("client-a").start(r));

                // 1. garbage: random bytes where a vfio-user header belongs
                byte[] garbage = new byte[4096];
                new Random(15).nextBytes(garbage);
                try (TestClient g = TestClient.connect(b.socket())) {
                    try {
                        g.sendRaw(garbage);
                    } catch (ErrnoException closedEarly) {
                        // the server may hang up before it read everything
                    }
                    assertTrue(g.closedByServer(5000), "the hostile client is disconnected");
                }
                b.server().awaitNoClient(Duration.ofSeconds(10));

                // 2. a crash in the middle of I/O: commands queued and rung, then the socket is gone
                try (TestClient crash = TestClient.connect(b.socket())) {
                    NvmeSocketDriver driverB = new NvmeSocketDriver(crash, ramB);
                    driverB.bringUp(false);
                    for (int i = 0; i < 8; i++) {
                        driverB.queueIo(WRITE, RAM_BASE + WRITE_BUF, i);
                    }
                    driverB.ringIo();
                }
                b.server().awaitNoClient(Duration.ofSeconds(10));

                // 3. a client that resets its device and goes away
                try (TestClient reset = TestClient.connect(b.socket())) {
                    NvmeSocketDriver driverB = new NvmeSocketDriver(reset, ramB);
                    driverB.bringUp(false);
                    reset.ok(CMD_DEVICE_RESET, new byte[0]);
                }
                b.server().awaitNoClient(Duration.ofSeconds(10));

                // 4. B's controller still serves a well-behaved client
                try (TestClient again = TestClient.connect(b.socket())) {
                    NvmeSocketDriver driverB = new NvmeSocketDriver(again, ramB);
                    driverB.bringUp(false);
                    assertEquals(0, driverB.io(READ, RAM_BASE + READ_BUF, 0));
                }
                b.server().awaitNoClient(Duration.ofSeconds(10));
                assertEquals(4L, b.resources().get("clients.total"));

                // 5. B's controller removed while A's I/O runs
                assertTrue(host.remove(b.socket()), "flushed");
                assertFalse(Files.exists(b.socket()));

                stop.set(true);
                long verified = ioA.get();
                assertTrue(verified >= 50, "A verified " + verified + " I/Os");
                assertEquals(1L, a.resources().get("clients.total"), "A's session was never interrupted");
                assertEquals(1L, a.resources().get("clients.connected"));
                assertEquals(0L, a.resources().get("errors.replied"), "A never got an error reply");
            }
        }
    }

    /** The control plane keeps answering while a controller's client floods its socket with garbage. */
    @Test
    void theControlPlaneIsNotWedgedByADeviceClient() throws Exception {
        try (ControllerHost host = ControllerHost.withInstalledPlugins(ControllerDefaults.standard(), null);
             RpcServer rpc = RpcServer.start(dir.resolve("c.rpc"), null, new RpcMethods(host))) {
            Controller a = host.add(nvme(dir.resolve("a.sock")));
            AtomicBoolean stop = new AtomicBoolean();
            Thread flood = Thread.ofPlatform().name("flood").start(() -> {
                Random random = new Random(1);
                byte[] junk = new byte[1024];
                while (!stop.get()) {
                    try (TestClient g = TestClient.connect(a.socket())) {
                        random.nextBytes(junk);
                        g.sendRaw(junk);
                        g.closedByServer(1000);
                    } catch (IOException expected) {
                        // refused while the previous session ends, or reset by the server
                    }
                }
            });
            try (RpcClient c = RpcClient.connect(rpc.path())) {
                for (int i = 0; i < 20; i++) {
                    Map<?, ?> r = c.call("controller_list", Map.of());
                    assertEquals(1, ((List<?>) ((Map<?, ?>) r.get("result")).get("controllers")).size());
                    assertNotNull(c.call("stats_get", Map.of("controller", a.socket().toString())).get("result"));
                }
                Map<?, ?> removed = c.call("controller_remove", Map.of("socket", a.socket().toString()));
                assertEquals(true, ((Map<?, ?>) removed.get("result")).get("flushed"), removed.toString());
            } finally {
                stop.set(true);
                flood.join();
            }
        }
    }
}
