package io.javadevices.vfiouser.server;

import io.javadevices.vfiouser.client.TestClient;
import io.javadevices.vfiouser.client.TestClient.EventFd;
import io.javadevices.vfiouser.client.TestClient.Memfd;
import io.javadevices.vfiouser.client.TestClient.Reply;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Every resource a client controls is bounded by a configurable {@link Limits} value, and going past a
 * bound is an error reply (or, for framing, an error reply and a disconnect), never an allocation of what
 * the client asked for. {@link MalformedTrafficTest} covers the default message-size limit, 17 fds and the
 * DMA map count/bytes limits; this test covers non-default values and the bounds of the limits themselves.
 */
class LimitsTest {
    private static final int EINVAL = 22, E2BIG = 7, ENOSYS = 38, ENOSPC = 28, ENOMEM = 12;
    private static final int SMALLEST_MESSAGE_LIMIT = (1 << 20) + 64; // max_data_xfer_size + 64

    @TempDir
    Path dir;

    /** The limits themselves are range-checked, so no configuration makes the server allocate without bound. */
    @Test
    void limitsAreRangeChecked() {
        Limits d = Limits.defaults();
        assertThrows(IllegalArgumentException.class, () -> d.withMaxMessageBytes(SMALLEST_MESSAGE_LIMIT - 1));
        assertThrows(IllegalArgumentException.class, () -> d.withMaxMessageBytes(Limits.MAX_MESSAGE_BYTES_CAP + 1));
        assertThrows(IllegalArgumentException.class, () -> d.withMaxMessageBytes(Integer.MAX_VALUE));
        assertThrows(IllegalArgumentException.class, () -> d.withMaxDmaMaps(0));
        assertThrows(IllegalArgumentException.class, () -> d.withMaxDmaMaps(65536));
        assertThrows(IllegalArgumentException.class, () -> d.withMaxMappedBytes(-1));
        assertThrows(IllegalArgumentException.class, () -> new Limits(d.maxMessageBytes(), 1, 0, 17, 1 << 20, 8));
        assertThrows(IllegalArgumentException.class, () -> new Limits(d.maxMessageBytes(), 1, 0, 0, 1 << 20, 8));
        assertThrows(IllegalArgumentException.class, () -> new Limits(d.maxMessageBytes(), 1, 0, 16, 1 << 20, 2049));
        assertThrows(IllegalArgumentException.class, () -> new Limits(d.maxMessageBytes(), 1, 0, 16, 2048, 8));
        assertEquals(SMALLEST_MESSAGE_LIMIT, d.withMaxMessageBytes(SMALLEST_MESSAGE_LIMIT).maxMessageBytes());
        assertEquals(Limits.MAX_MESSAGE_BYTES_CAP, d.withMaxMessageBytes(Limits.MAX_MESSAGE_BYTES_CAP).maxMessageBytes());
    }

    /** A message of exactly maxMessageBytes is read and answered; one byte more is E2BIG and a disconnect. */
    @Test
    void configuredMessageSizeLimit() throws Exception {
        try (VfioUserServer server = Fixture.start(dir, Limits.defaults().withMaxMessageBytes(SMALLEST_MESSAGE_LIMIT))) {
            try (TestClient c = Fixture.client(server)) {
                byte[] atLimit = TestClient.message(5, 0x7777, 0, new byte[SMALLEST_MESSAGE_LIMIT - 16]);
                c.sendRaw(atLimit);
                Reply r = c.readReply();
                assertEquals(5, r.id());
                assertEquals(ENOSYS, r.error(), "read completely and answered: unknown command");
                assertFalse(c.request(CMD_DEVICE_GET_INFO, TestClient.le(16).putInt(16).array()).isError(),
                        "the stream is still in sync");
                byte[] over = TestClient.le(16).putShort((short) 6).putShort((short) CMD_REGION_WRITE)
                        .putInt(SMALLEST_MESSAGE_LIMIT + 1).putInt(0).putInt(0).array();
                c.sendRaw(over);
                Reply e = c.readReply();
                assertEquals(6, e.id());
                assertEquals(E2BIG, e.error());
                assertTrue(c.closedByServer(5000));
            }
            Fixture.assertServes(server);
        }
    }

    /** With maxFdsPerMessage = 2, a message carrying 3 fds is EINVAL and every fd it carried is closed. */
    @Test
    void configuredFdLimit() throws Exception {
        Limits d = Limits.defaults();
        Limits two = new Limits(d.maxMessageBytes(), d.maxDmaMaps(), d.maxMappedBytes(), 2, d.maxDataXferSize(),
                d.maxMsixVectors());
        try (VfioUserServer server = Fixture.start(dir, two);
             EventFd a = new EventFd(); EventFd b = new EventFd(); EventFd e = new EventFd()) {
            Fixture.assertServes(server);
            long before = Fixture.openFds();
            try (TestClient c = Fixture.client(server)) {
                c.version();
                Reply r = c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_MSIX, 0, 3, a.fd, b.fd, e.fd);
                assertTrue(r.isError());
                assertEquals(EINVAL, r.error());
                assertEquals(0L, server.resources().get("irq.fds"));
                assertFalse(c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_MSIX, 0, 2, a.fd, b.fd).isError(),
                        "two fds are within the limit");
                assertEquals(2L, server.resources().get("irq.fds"));
            }
            Fixture.idle(server);
            assertEquals(before, Fixture.openFds(), "every fd sent to the server was closed");
        }
    }

    /** Many DMA maps and bytes up to configured limits: the next one is refused, and all are released. */
    @Test
    void configuredDmaLimits() throws Exception {
        try (VfioUserServer server = Fixture.start(dir, Limits.defaults().withMaxDmaMaps(100).withMaxMappedBytes(256 << 10));
             Memfd ram = new Memfd(1 << 20)) {
            try (TestClient c = Fixture.client(server)) {
                c.version();
                for (int i = 0; i < 64; i++) { // 64 fd-backed 4 KiB maps = the 256 KiB byte limit
                    assertFalse(c.dmaMap(0x1000_0000L + 0x10000L * i, 4096, 4096L * i, ram.fd).isError(), "map " + i);
                }
                assertEquals(ENOMEM, c.dmaMap(0x2000_0000L, 4096, 0, ram.fd).error(), "over maxMappedBytes");
                for (int i = 0; i < 36; i++) { // fd-less maps count but map nothing
                    assertFalse(c.dmaMap(0x4000_0000L + 0x10000L * i, 4096, 0, -1).isError(), "fd-less map " + i);
                }
                assertEquals(ENOSPC, c.dmaMap(0x5000_0000L, 4096, 0, -1).error(), "over maxDmaMaps");
                assertEquals(100L, server.resources().get("dma.maps"));
                assertEquals(256L << 10, server.resources().get("dma.bytes"));
            }
            Fixture.idle(server);
            assertEquals(0L, server.resources().get("dma.maps"));
            assertEquals(0L, server.resources().get("dma.bytes"));
        }
    }
}
