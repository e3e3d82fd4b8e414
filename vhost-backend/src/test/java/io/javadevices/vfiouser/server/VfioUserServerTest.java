package io.javadevices.vfiouser.server;

import io.javadevices.pci.sample.DmaCopyDevice;
import io.javadevices.vfiouser.client.TestClient;
import io.javadevices.vfiouser.client.TestClient.EventFd;
import io.javadevices.vfiouser.client.TestClient.Memfd;
import io.javadevices.vfiouser.client.TestClient.Reply;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import static io.javadevices.pci.sample.DmaCopyDevice.*;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.*;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static org.junit.jupiter.api.Assertions.*;

/** The happy path, command by command, over a real socket with the DmaCopyDevice sample. */
class VfioUserServerTest {
    @TempDir
    Path dir;
    VfioUserServer server;

    @BeforeEach
    void start() throws Exception {
        server = Fixture.start(dir);
    }

    @AfterEach
    void stop() {
        server.close();
    }

    @Test
    void versionReplyIsExplicitAndNoLongerThanTheRequest() throws Exception {
        try (TestClient c = Fixture.client(server)) {
            Reply r = c.version();
            assertFalse(r.isError());
            assertEquals(0, r.body().getShort(0));
            assertEquals(0, r.body().getShort(2));
            byte[] body = r.body().array();
            assertEquals(0, body[body.length - 1], "JSON is NUL-terminated");
            String json = new String(body, 4, body.length - 5, StandardCharsets.UTF_8);
            assertTrue(json.contains("\"max_msg_fds\":16"), json);
            assertTrue(json.contains("\"max_data_xfer_size\":1048576"), json);
            assertFalse(json.contains("migration"), json);
            assertFalse(json.contains("write_multiple"), json);
            int requestBody = 4 + TestClient.QEMU_CAPS.length() + 1;
            assertTrue(body.length <= requestBody, "reply " + body.length + " > request " + requestBody);
            assertEquals(16, server.clientCapabilities().maxMsgFds());
        }
    }

    @Test
    void qemusExactFirstMessageIsAnswered() throws Exception {
        // The 214-byte VERSION captured from QEMU 11.1 (hw/vfio-user/proxy.c {@code vfio_user_validate_version}
        // sends it as the first message of a session).
        String json = "{\"capabilities\": {\"pgsizes\": 4096, \"max_msg_fds\": 16, \"max_dma_maps\": 65535, "
                + "\"max_data_xfer_size\": 1048576, \"migration\": {\"max_bitmap_size\": 268435456, \"pgsize\": 4096}, "
                + "\"write_multiple\": true}}";
        byte[] j = json.getBytes(StandardCharsets.US_ASCII);
        byte[] payload = new byte[4 + j.length + 1];
        System.arraycopy(j, 0, payload, 4, j.length);
        byte[] msg = TestClient.message(0, CMD_VERSION, 0, payload);
        assertEquals(214, msg.length);
        try (TestClient c = Fixture.client(server)) {
            c.sendRaw(msg);
            Reply r = c.readReply();
            assertEquals(0, r.id());
            assertEquals(CMD_VERSION, r.command());
            assertEquals(FLAG_TYPE_REPLY, r.flags());
            assertTrue(16 + r.body().capacity() <= 214);
        }
    }

    @Test
    void deviceRegionAndIrqInfo() throws Exception {
        try (TestClient c = Fixture.client(server)) {
            c.version();
            Reply info = c.deviceInfo();
            assertEquals(16, info.body().getInt(0));
            assertEquals(DEVICE_FLAGS_PCI | DEVICE_FLAGS_RESET, info.body().getInt(4));
            assertEquals(9, info.body().getInt(8));
            assertEquals(5, info.body().getInt(12));

            long[] sizes = {4096, 0, 4096, 0, 0, 0, 0, 4096, 0};
            for (int i = 0; i < 9; i++) {
                Reply r = c.regionInfo(i, 32);
                assertFalse(r.isError(), "region " + i);
                assertEquals(32, r.body().capacity());
                assertEquals(32, r.body().getInt(0));
                assertEquals(i, r.body().getInt(8));
                assertEquals(sizes[i], r.body().getLong(16), "size of region " + i);
                int flags = r.body().getInt(4);
                assertEquals(sizes[i] == 0 ? 0 : REGION_FLAG_READ | REGION_FLAG_WRITE, flags, "flags of " + i);
            }
            // A bigger argsz (QEMU's retry) gets the same 32 bytes: no caps, nothing to truncate.
            assertEquals(32, c.regionInfo(0, 256).body().capacity());
            assertEquals(EINVAL(), c.regionInfo(9, 32).error());
            assertEquals(EINVAL(), c.regionInfo(0, 16).error());

            int[] counts = {0, 0, 2, 1, 1};
            for (int i = 0; i < 5; i++) {
                Reply r = c.irqInfo(i);
                assertFalse(r.isError());
                assertEquals(i, r.body().getInt(8));
                assertEquals(counts[i], r.body().getInt(12), "irq index " + i);
            }
            assertEquals(IRQ_INFO_EVENTFD, c.irqInfo(IRQ_MSIX).body().getInt(4), "MSI-X without NORESIZE");
            assertTrue(c.irqInfo(5).isError());
        }
    }

    static int EINVAL() {
        return 22;
    }

    @Test
    void configSpaceAndBarAccessesOfEverySize() throws Exception {
        try (TestClient c = Fixture.client(server)) {
            c.version();
            byte[] config = c.read(REGION_CONFIG, 0, 4096); // QEMU's first config read: one 4 KiB message
            assertEquals(0x58, config[0] & 0xFF);
            assertEquals(0x4E, config[1] & 0xFF);
            assertEquals(0x4E58, c.readLong(REGION_CONFIG, 0, 2));
            assertEquals(0x0001, c.readLong(REGION_CONFIG, 2, 2));
            // ROM sizing: write all-ones to 0x30, read back 0 (no ROM).
            c.writeLong(REGION_CONFIG, 0x30, 4, 0xFFFFF800L);
            assertEquals(0, c.readLong(REGION_CONFIG, 0x30, 4));

            assertEquals(ID & 0xFFFFFFFFL, c.readLong(0, REG_ID, 4));
            c.writeLong(0, REG_SCRATCH, 4, 0xA1B2C3D4L);
            assertEquals(0xA1B2C3D4L, c.readLong(0, REG_SCRATCH, 4));
            assertEquals(0xC3D4, c.readLong(0, REG_SCRATCH, 2));
            assertEquals(0xD4, c.readLong(0, REG_SCRATCH, 1));
            c.writeLong(0, REG_SRC, 8, 0x1122334455667788L);
            assertEquals(0x1122334455667788L, c.readLong(0, REG_SRC, 8));
            // A 16-byte access is split into two 8-byte handler calls.
            c.regionWrite(0, REG_SRC, concat(TestClient.bytes(0x10, 8), TestClient.bytes(0x20, 8)));
            byte[] both = c.read(0, REG_SRC, 16);
            assertArrayEquals(concat(TestClient.bytes(0x10, 8), TestClient.bytes(0x20, 8)), both);
            // Posted writes are applied in order and never answered; the following read sees them.
            c.postedWrite(0, REG_SCRATCH, TestClient.bytes(1, 4));
            c.postedWrite(0, REG_SCRATCH, TestClient.bytes(2, 4));
            assertEquals(2, c.readLong(0, REG_SCRATCH, 4));
            // Writes to the MSI-X BAR are accepted (QEMU owns the table).
            c.writeLong(2, 0, 4, 0xFEE00000L);
            assertEquals(0, server.resources().get("errors.replied"));
        }
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] r = new byte[a.length + b.length];
        System.arraycopy(a, 0, r, 0, a.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }

    @Test
    void dmaCopyRaisesMsixThroughTheEventfd() throws Exception {
        long gpa = 0x100000;
        long size = 2 << 20;
        try (TestClient c = Fixture.client(server); Memfd ram = new Memfd(size); EventFd vector0 = new EventFd();
             EventFd vector1 = new EventFd()) {
            c.version();
            assertFalse(c.dmaMap(gpa, size, 0, ram.fd).isError());
            assertFalse(c.dmaMap(0xC0000, 0x20000, 0, -1).isError(), "fd-less maps are acknowledged");
            assertEquals(2L, server.resources().get("dma.maps"));
            assertEquals(size, server.resources().get("dma.bytes"));

            // QEMU's dynamic MSI-X enable: start=0 count=1 without fds, then per-vector eventfds.
            assertFalse(c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_MSIX, 0, 1).isError());
            assertFalse(c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_MSIX, 0, 2, vector0.fd,
                    vector1.fd).isError());
            assertEquals(2L, server.resources().get("irq.fds"));
            assertTrue(server.device() instanceof DmaCopyDevice);

            c.writeLong(REGION_CONFIG, 0x04, 2, 0x0006); // memory + bus master
            for (int i = 0; i < 256; i++) {
                ram.memory.set(JAVA_BYTE, 0x1000 + i, (byte) (i * 7));
            }
            c.postedWrite(0, REG_SRC, TestClient.bytes(gpa + 0x1000, 8));
            c.postedWrite(0, REG_DST, TestClient.bytes(gpa + 0x3000, 8));
            c.postedWrite(0, REG_LEN, TestClient.bytes(256, 4));
            c.postedWrite(0, REG_DOORBELL, TestClient.bytes(1, 4));
            assertEquals(1, vector0.await(5000), "MSI-X vector 0 fired");
            assertEquals(STATUS_DONE, c.readLong(0, REG_STATUS, 4));
            assertEquals(-1, ram.memory.asSlice(0x3000, 256).mismatch(ram.memory.asSlice(0x1000, 256)));
            assertEquals(0, vector1.await(0));

            // De-assign vector 0 (a run of -1 entries): the next completion is dropped, not delivered.
            assertFalse(c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_MSIX, 0, 1).isError());
            assertFalse(server.interruptsForTest().isMsixVectorUsable(0));
            assertTrue(server.interruptsForTest().isMsixVectorUsable(1));
            long dropped = server.resources().get("irq.dropped");
            c.postedWrite(0, REG_DOORBELL, TestClient.bytes(1, 4));
            waitFor(() -> server.resources().get("irq.dropped") > dropped);
            assertEquals(0, vector0.await(100));

            // A DMA to an fd-less range fails cleanly in the device (status error), no crash.
            c.postedWrite(0, REG_SRC, TestClient.bytes(0xC0000, 8));
            c.postedWrite(0, REG_DOORBELL, TestClient.bytes(1, 4));
            waitFor(() -> c.readLong(0, REG_STATUS, 4) == STATUS_ERROR);

            // Client-side trigger (DATA_NONE + TRIGGER) fires vector 1; DATA_BOOL too.
            assertFalse(c.setIrqs(IRQ_SET_DATA_NONE | IRQ_SET_ACTION_TRIGGER, IRQ_MSIX, 1, 1).isError());
            assertEquals(1, vector1.await(2000));
            byte[] bools = TestClient.le(22).putInt(22).putInt(IRQ_SET_DATA_BOOL | IRQ_SET_ACTION_TRIGGER)
                    .putInt(IRQ_MSIX).putInt(0).putInt(2).put((byte) 0).put((byte) 1).array();
            assertFalse(c.request(CMD_DEVICE_SET_IRQS, bools).isError());
            assertEquals(1, vector1.await(2000));

            // Disable all (DATA_NONE + TRIGGER, count 0) releases every eventfd.
            assertFalse(c.setIrqs(IRQ_SET_DATA_NONE | IRQ_SET_ACTION_TRIGGER, IRQ_MSIX, 0, 0).isError());
            assertEquals(0L, server.resources().get("irq.fds"));

            // Unmap one range exactly, then everything with the ALL flag.
            Reply unmap = c.dmaUnmap(0xC0000, 0x20000, 0);
            assertFalse(unmap.isError());
            assertEquals(24, unmap.body().capacity());
            assertEquals(1L, server.resources().get("dma.maps"));
            assertEquals(2, c.dmaUnmap(0xC0000, 0x20000, 0).error(), "ENOENT for a range not mapped");
            assertFalse(c.dmaUnmap(0, 0, DMA_UNMAP_FLAG_ALL).isError());
            assertEquals(0L, server.resources().get("dma.maps"));
            assertEquals(0L, server.resources().get("dma.bytes"));
            assertTrue(server.device().config().isBusMasterEnabled());

            // DEVICE_RESET resets the device (and its config space).
            assertFalse(c.request(CMD_DEVICE_RESET, new byte[0]).isError());
            assertEquals(STATUS_IDLE, c.readLong(0, REG_STATUS, 4));
            assertFalse(server.device().config().isBusMasterEnabled());
        }
    }

    @Test
    void regionWriteMultiIsParsedEvenThoughNotAdvertised() throws Exception {
        try (TestClient c = Fixture.client(server)) {
            c.version();
            byte[] multi = TestClient.le(8 + 48).putLong(2)
                    .putLong(REG_SCRATCH).putInt(0).putInt(4).putLong(0x11)
                    .putLong(REG_SCRATCH).putInt(0).putInt(2).putLong(0x2222).array();
            Reply r = c.request(CMD_REGION_WRITE_MULTI, multi);
            assertFalse(r.isError());
            assertEquals(2, r.body().getLong(0));
            assertEquals(0x2222, c.readLong(0, REG_SCRATCH, 4), "applied in order");
            c.send(CMD_REGION_WRITE_MULTI, FLAG_NO_REPLY, TestClient.le(32).putLong(1)
                    .putLong(REG_SCRATCH).putInt(0).putInt(4).putLong(0x33).array());
            assertEquals(0x33, c.readLong(0, REG_SCRATCH, 4));
            // one bad entry: nothing is applied
            byte[] bad = TestClient.le(8 + 48).putLong(2)
                    .putLong(REG_SCRATCH).putInt(0).putInt(4).putLong(0x44)
                    .putLong(REG_SCRATCH).putInt(9).putInt(4).putLong(0).array();
            assertTrue(c.request(CMD_REGION_WRITE_MULTI, bad).isError());
            assertEquals(0x33, c.readLong(0, REG_SCRATCH, 4));
            assertTrue(server.resources().get("messages") >= 7);
        }
    }

    @Test
    void errorAndErrInterruptIndices() throws Exception {
        try (TestClient c = Fixture.client(server); EventFd err = new EventFd()) {
            c.version();
            assertFalse(c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_ERR, 0, 1, err.fd).isError());
            assertEquals(1L, server.resources().get("irq.fds"));
            assertTrue(c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_MSI, 0, 1).isError(),
                    "MSI has no vectors");
            assertTrue(c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_MSIX, 1, 2).isError(),
                    "beyond the vector count");
            assertTrue(c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_DATA_NONE | IRQ_SET_ACTION_TRIGGER, IRQ_MSIX, 0, 1)
                    .isError(), "two data types");
            assertFalse(c.setIrqs(IRQ_SET_DATA_NONE | IRQ_SET_ACTION_TRIGGER, IRQ_ERR, 0, 0).isError());
            assertEquals(0L, server.resources().get("irq.fds"));
        }
    }

    interface Check {
        boolean ok() throws Exception;
    }

    static void waitFor(Check check) throws Exception {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (!check.ok()) {
            if (System.nanoTime() > deadline) {
                fail("condition not reached in 5 s");
            }
            Thread.sleep(5);
        }
    }
}
