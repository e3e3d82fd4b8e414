package io.javadevices.vfiouser.server;

import io.javadevices.pci.PciDevicePlugin;
import io.javadevices.vfiouser.client.TestClient;
import io.javadevices.vfiouser.client.TestClient.Memfd;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.CMD_DEVICE_RESET;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.REGION_CONFIG;
import static io.javadevices.vfiouser.server.NvmeSocketDriver.BUF;
import static io.javadevices.vfiouser.server.NvmeSocketDriver.RAM_BASE;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A client that crashes in the middle of I/O, then one that resets the device and leaves, then a new
 * client, again and again on one server and one guest-RAM memfd (the memory a VM restarted on the same
 * backing file would bring): every new client finds the controller in power-on state and its I/O works.
 *
 * <p>The memfd still holds the former clients' queues, completions included; a driver that does not clear
 * them (Linux does, nvme_init_queue) takes them for its own: its Create I/O SQ "completes" before the
 * controller ran it, and its first I/O doorbell then names a queue that does not exist yet.
 */
@Timeout(60)
class ClientAfterCrashAndResetTest {
    private static final int WRITE = 0x01, READ = 0x02, ROUNDS = 5;
    private static final long WRITE_BUF = BUF, READ_BUF = BUF + 0x1000;

    @TempDir
    Path dir;

    @Test
    void everyNewClientFindsAPowerOnControllerWhateverTheFormerOnesDid() throws Exception {
        PciDevicePlugin plugin = PciDevicePlugin.find("nvme").orElseThrow();
        try (VfioUserServer server = VfioUserServer.builder().socket(dir.resolve("nvme.sock"))
                .device(ctx -> plugin.create(Map.of("namespaces", "ram:1M"), ctx)).build();
             Memfd ram = new Memfd(1 << 20)) {
            server.start();
            for (int round = 0; round < ROUNDS; round++) {
                try (TestClient crash = TestClient.connect(server.socketPath())) {
                    NvmeSocketDriver d = new NvmeSocketDriver(crash, ram);
                    d.bringUp(false);
                    for (int i = 0; i < 8; i++) {
                        d.queueIo(WRITE, RAM_BASE + WRITE_BUF, i);
                    }
                    d.ringIo(); // and gone before any completion
                }
                server.awaitNoClient(Duration.ofSeconds(10));
                try (TestClient reset = TestClient.connect(server.socketPath())) {
                    new NvmeSocketDriver(reset, ram).bringUp(false);
                    reset.ok(CMD_DEVICE_RESET, new byte[0]);
                }
                server.awaitNoClient(Duration.ofSeconds(10));
                try (TestClient fresh = TestClient.connect(server.socketPath())) {
                    assertPowerOnState(server, fresh, round);
                    NvmeSocketDriver d = new NvmeSocketDriver(fresh, ram);
                    d.bringUp(false);
                    assertEquals(1L, server.device().statistics().get("io.queues"),
                            "round " + round + ": I/O queue 1 exists once its Create I/O SQ completed");
                    writeAndReadBack(d, round);
                }
                server.awaitNoClient(Duration.ofSeconds(10));
            }
            Map<String, Long> stats = server.device().statistics();
            for (String kind : new String[]{"db-invalid-sq", "db-invalid-cq", "db-invalid-sq-tail", "db-invalid-cq-head",
                    "admin-invalid-field"}) {
                assertEquals(0L, stats.get("guest.error." + kind), kind + ": no client did anything invalid");
            }
            assertEquals(3L * ROUNDS, server.resources().get("clients.total"));
        }
    }

    /** CSTS, CC, AQA, ASQ, ACQ and the PCI command register as at power-on, no I/O queue (NVMe 1.4 §3.1). */
    private static void assertPowerOnState(VfioUserServer server, TestClient c, int round) throws Exception {
        String where = "round " + round + ": ";
        assertEquals(0L, c.readLong(0, 0x1C, 4), where + "CSTS");
        assertEquals(0L, c.readLong(0, 0x14, 4), where + "CC");
        assertEquals(0L, c.readLong(0, 0x24, 4), where + "AQA");
        assertEquals(0L, c.readLong(0, 0x28, 8), where + "ASQ");
        assertEquals(0L, c.readLong(0, 0x30, 8), where + "ACQ");
        assertEquals(0L, c.readLong(REGION_CONFIG, 4, 2), where + "PCI command (bus master off)");
        assertEquals(0L, server.device().statistics().get("io.queues"), where + "no I/O queue left");
    }

    /** A round-specific pattern written and read back into a cleared buffer: the data, not only a status. */
    private static void writeAndReadBack(NvmeSocketDriver d, int round) throws Exception {
        MemorySegment w = d.at(WRITE_BUF).asSlice(0, 512);
        for (int i = 0; i < 512; i++) {
            w.set(JAVA_BYTE, i, (byte) (round * 17 + i));
        }
        assertEquals(0, d.io(WRITE, RAM_BASE + WRITE_BUF, 100 + round), "round " + round + ": write status");
        d.at(READ_BUF).asSlice(0, 512).fill((byte) 0);
        assertEquals(0, d.io(READ, RAM_BASE + READ_BUF, 100 + round), "round " + round + ": read status");
        assertEquals(-1, w.mismatch(d.at(READ_BUF).asSlice(0, 512)), "round " + round + ": read back what was written");
    }
}
