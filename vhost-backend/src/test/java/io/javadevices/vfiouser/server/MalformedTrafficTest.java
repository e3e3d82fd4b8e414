package io.javadevices.vfiouser.server;

import io.javadevices.vfiouser.client.TestClient;
import io.javadevices.vfiouser.client.TestClient.EventFd;
import io.javadevices.vfiouser.client.TestClient.Memfd;
import io.javadevices.vfiouser.client.TestClient.Reply;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Path;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.*;
import static org.junit.jupiter.api.Assertions.*;

/** Every kind of bad message gets an error reply or a clean disconnect; the server keeps serving. */
class MalformedTrafficTest {
    static final int EINVAL = 22, E2BIG = 7, ENOSYS = 38, EEXIST = 17, ENOSPC = 28, ENOMEM = 12, ENOTSUP = 95;

    @TempDir
    Path dir;
    VfioUserServer server;

    @BeforeEach
    void start() throws Exception {
        server = Fixture.start(dir, Limits.defaults().withMaxDmaMaps(3).withMaxMappedBytes(1 << 20));
    }

    @AfterEach
    void stop() throws Exception {
        Fixture.assertServes(server);
        assertTrue(server.isServing());
        server.close();
    }

    private static byte[] header(int id, int command, long size, int flags) {
        return TestClient.le(16).putShort((short) id).putShort((short) command).putInt((int) size).putInt(flags)
                .putInt(0).array();
    }

    private void assertError(Reply r, int errno) {
        assertTrue(r.isReply(), "reply type");
        assertTrue(r.isError(), "error flag");
        assertEquals(16, 16 + r.body().capacity(), "error replies are header-only");
        assertEquals(errno, r.error());
    }

    @Test
    void truncatedHeaderThenEof() throws Exception {
        try (TestClient c = Fixture.client(server)) {
            c.sendRaw(new byte[] {1, 0, 1, 0, 20, 0, 0});
        }
        Fixture.assertServes(server);
        try (TestClient c = Fixture.client(server)) { // header complete, body cut short
            c.sendRaw(TestClient.message(1, CMD_VERSION, 0, new byte[40]), new int[0]);
            byte[] partial = new byte[30];
            System.arraycopy(TestClient.message(2, CMD_REGION_WRITE, 0, new byte[100]), 0, partial, 0, 30);
            c.sendRaw(partial);
        }
    }

    @Test
    void sizeBelowHeaderGetsErrorThenDisconnect() throws Exception {
        try (TestClient c = Fixture.client(server)) {
            c.sendRaw(header(7, CMD_DEVICE_GET_INFO, 8, 0));
            Reply r = c.readReply();
            assertEquals(7, r.id());
            assertError(r, EINVAL);
            assertTrue(c.closedByServer(5000));
        }
    }

    @Test
    void sizeAboveLimitGetsErrorThenDisconnect() throws Exception {
        try (TestClient c = Fixture.client(server)) {
            c.sendRaw(header(8, CMD_REGION_WRITE, 0xFFFF_FFF0L, 0));
            assertError(c.readReply(), E2BIG);
            assertTrue(c.closedByServer(5000));
        }
    }

    @Test
    void messagesSplitAndCoalesced() throws Exception {
        try (TestClient c = Fixture.client(server)) {
            byte[] a = TestClient.message(1, CMD_DEVICE_GET_INFO, 0, TestClient.le(16).putInt(16).array());
            byte[] b = TestClient.message(2, CMD_REGION_READ, 0, TestClient.rwPayload(REGION_CONFIG, 0, 4, null));
            byte[] both = new byte[a.length + b.length];
            System.arraycopy(a, 0, both, 0, a.length);
            System.arraycopy(b, 0, both, a.length, b.length);
            c.sendRaw(both); // coalesced
            assertEquals(1, c.readReply().id());
            assertEquals(2, c.readReply().id());
            for (int i = 0; i < both.length; i++) { // split byte by byte
                c.sendRaw(new byte[] {both[i]});
                if (i % 5 == 0) {
                    Thread.sleep(0, 100_000);
                }
            }
            assertEquals(1, c.readReply().id());
            Reply r = c.readReply();
            assertEquals(2, r.id());
            assertEquals(0x00014E58, r.body().getInt(16));
        }
    }

    @Test
    void wrongArgszIndexAndRangesGetEinval() throws Exception {
        try (TestClient c = Fixture.client(server)) {
            c.version();
            assertError(c.request(CMD_DEVICE_GET_INFO, TestClient.le(16).putInt(8).array()), EINVAL);
            assertError(c.request(CMD_DEVICE_GET_INFO, new byte[4]), EINVAL);
            assertError(c.request(CMD_DEVICE_GET_IRQ_INFO, TestClient.le(16).putInt(16).putInt(0).putInt(99).array()), EINVAL);
            assertError(c.regionInfo(100, 32), EINVAL);
            assertError(c.regionRead(9, 0, 4), EINVAL);
            assertError(c.regionRead(0, 4090, 16), EINVAL);
            assertError(c.regionRead(1, 0, 4), EINVAL); // absent BAR
            assertError(c.regionRead(8, 0, 4), EINVAL); // VGA, size 0
            assertError(c.regionRead(REGION_CONFIG, 4095, 2), EINVAL);
            assertError(c.regionRead(REGION_CONFIG, -8, 4), EINVAL);
            assertError(c.regionRead(0, 0, 2 << 20), EINVAL); // above max_data_xfer_size
            // count disagrees with the data that follows
            assertError(c.request(CMD_REGION_WRITE, TestClient.rwPayload(0, 0x24, 8, new byte[4])), EINVAL);
            assertError(c.request(CMD_DMA_MAP, TestClient.le(32).putInt(16).array()), EINVAL);
            assertError(c.dmaUnmap(0, 0x1000, 0x4), EINVAL);
            assertError(c.dmaUnmap(0, 0x1000, DMA_UNMAP_FLAG_GET_DIRTY_BITMAP), ENOTSUP);
            assertError(c.dmaUnmap(0, 0x1000, DMA_UNMAP_FLAG_ALL | 0x1), EINVAL);
            assertError(c.request(CMD_DEVICE_RESET, new byte[4]), EINVAL);
            assertError(c.request(CMD_VERSION, TestClient.le(8).putShort((short) 1).array()), ENOTSUP);
            assertError(c.request(CMD_VERSION, "\0\0\0\0{not json\0".getBytes()), EINVAL);
            assertError(c.request(CMD_REGION_WRITE_MULTI, TestClient.le(8).putLong(201).array()), EINVAL);
            // the connection is still in sync
            assertEquals(0x4E58, c.readLong(REGION_CONFIG, 0, 2));
        }
    }

    @Test
    void unknownAndUnsupportedCommandsGetEnosys() throws Exception {
        try (TestClient c = Fixture.client(server)) {
            for (int command : new int[] {0, CMD_DEVICE_GET_REGION_IO_FDS, CMD_DMA_READ, CMD_DMA_WRITE, CMD_DIRTY_PAGES,
                    CMD_DEVICE_FEATURE, CMD_MIG_DATA_READ, 99, 0xFFFF}) {
                assertError(c.request(command, new byte[12]), ENOSYS);
            }
            assertEquals(9, server.resources().get("errors.replied"));
        }
    }

    @Test
    void noReplyCommandsAreNeverAnsweredEvenOnError() throws Exception {
        try (TestClient c = Fixture.client(server)) {
            c.send(99, FLAG_NO_REPLY, new byte[0]);
            c.send(CMD_REGION_WRITE, FLAG_NO_REPLY, TestClient.rwPayload(9, 0, 4, new byte[4]));
            c.send(CMD_REGION_WRITE, FLAG_NO_REPLY, TestClient.rwPayload(0, 0x24, 4, TestClient.bytes(5, 4)));
            Reply r = c.request(CMD_DEVICE_GET_INFO, TestClient.le(16).putInt(16).array()); // next reply is this one
            assertFalse(r.isError());
            assertEquals(5, c.readLong(0, 0x24, 4));
        }
    }

    @Test
    void replyTypeMessagesFromTheClientAreIgnored() throws Exception {
        try (TestClient c = Fixture.client(server)) {
            c.send(CMD_DMA_READ, FLAG_TYPE_REPLY, new byte[16]);
            c.send(CMD_VERSION, FLAG_TYPE_REPLY | FLAG_ERROR, new byte[0]);
            assertFalse(c.request(CMD_DEVICE_GET_INFO, TestClient.le(16).putInt(16).array()).isError());
            assertError(c.request(CMD_DEVICE_GET_INFO, new byte[0]), EINVAL);
            c.send(CMD_DEVICE_GET_INFO, 5, TestClient.le(16).putInt(16).array()); // type 5: not a command
            assertError(c.readReply(), EINVAL);
        }
    }

    @Test
    void fdsOnTheWrongCommandAreClosed() throws Exception {
        Fixture.assertServes(server);
        long before = Fixture.openFds();
        try (TestClient c = Fixture.client(server); EventFd e1 = new EventFd(); EventFd e2 = new EventFd()) {
            assertError(c.request(CMD_DEVICE_GET_INFO, TestClient.le(16).putInt(16).array(), e1.fd), EINVAL);
            assertError(c.request(CMD_REGION_READ, TestClient.rwPayload(REGION_CONFIG, 0, 4, null), e1.fd, e2.fd), EINVAL);
            assertError(c.request(CMD_DMA_MAP, TestClient.dmaMapPayload(0, 4096, 0, 3), e1.fd, e2.fd), EINVAL);
            // an eventfd is not guest RAM
            assertError(c.request(CMD_DMA_MAP, TestClient.dmaMapPayload(0, 4096, 0, 3), e1.fd), EINVAL);
            // two fds for three vectors
            assertError(c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_MSIX, 0, 2, e1.fd, e2.fd, e1.fd), EINVAL);
            // fds with DATA_NONE
            assertError(c.setIrqs(IRQ_SET_DATA_NONE | IRQ_SET_ACTION_TRIGGER, IRQ_MSIX, 0, 1, e1.fd), EINVAL);
            // fds after the header (on body bytes) are dropped by the kernel
            byte[] msg = TestClient.message(50, CMD_DEVICE_GET_INFO, 0, TestClient.le(16).putInt(16).array());
            byte[] head = java.util.Arrays.copyOf(msg, 16);
            byte[] tail = java.util.Arrays.copyOfRange(msg, 16, msg.length);
            c.sendRaw(head);
            Thread.sleep(20);
            c.sendRaw(tail, e1.fd);
            assertFalse(c.readReply().isError());
            assertEquals(0L, server.resources().get("irq.fds"));
            assertEquals(0L, server.resources().get("dma.maps"));
        }
        Fixture.idle(server);
        assertEquals(before, Fixture.openFds(), "every fd sent to the server was closed");
    }

    @Test
    void tooManyFdsAreRejectedAndClosed() throws Exception {
        Fixture.assertServes(server);
        long before = Fixture.openFds();
        EventFd[] efds = new EventFd[17];
        int[] fds = new int[17];
        for (int i = 0; i < efds.length; i++) {
            efds[i] = new EventFd();
            fds[i] = efds[i].fd;
        }
        try (TestClient c = Fixture.client(server)) {
            assertError(c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_MSIX, 0, 2, fds), EINVAL);
            assertEquals(0L, server.resources().get("irq.fds"));
        } finally {
            for (EventFd e : efds) {
                e.close();
            }
        }
        Fixture.idle(server);
        assertEquals(before, Fixture.openFds());
    }

    @Test
    void dmaMapsBeyondTheLimits() throws Exception {
        try (TestClient c = Fixture.client(server); Memfd small = new Memfd(1 << 20); Memfd big = new Memfd(2 << 20)) {
            c.version();
            assertError(c.dmaMap(0x1000_0000L, 2 << 20, 0, big.fd), ENOMEM); // over maxMappedBytes
            assertError(c.dmaMap(0x1000_0000L, 8192, 1 << 20, small.fd), EINVAL); // past end of file
            assertError(c.dmaMap(0, 0, 0, -1), EINVAL);
            assertError(c.dmaMap(0x7FFF_FFFF_FFFF_F000L, 0x2000, 0, -1), EINVAL); // wraps
            assertError(c.request(CMD_DMA_MAP, TestClient.dmaMapPayload(0, 4096, 0, 0x10)), EINVAL); // flags
            assertFalse(c.dmaMap(0, 1 << 20, 0, small.fd).isError());
            assertFalse(c.dmaMap(0, 1 << 20, 0, small.fd).isError(), "identical re-map is a no-op");
            assertError(c.dmaMap(0, 1 << 20, 0, -1), EEXIST); // same range, but fd-less: not the same mapping
            assertError(c.dmaMap(0x8000, 0x1000, 0, -1), EEXIST);
            assertFalse(c.dmaMap(0x200000, 0x1000, 0, -1).isError());
            assertFalse(c.dmaMap(0x300000, 0x1000, 0, -1).isError());
            assertError(c.dmaMap(0x400000, 0x1000, 0, -1), ENOSPC); // maxDmaMaps = 3
            assertEquals(3L, server.resources().get("dma.maps"));
            assertEquals((long) (1 << 20), server.resources().get("dma.bytes"));
        }
        Fixture.idle(server);
        assertEquals(0L, server.resources().get("dma.maps"));
        assertEquals(0L, server.resources().get("dma.bytes"));
    }
}
