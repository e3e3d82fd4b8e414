package io.javadevices.vfiouser.protocol;

import io.javadevices.vfiouser.client.TestClient;
import io.javadevices.vfiouser.sys.SocketStructs;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** C struct sizes, wire struct sizes and capability parsing. */
class ProtocolStructsTest {
    @Test
    void cStructLayoutsMatchLinuxLp64() {
        assertEquals(56, SocketStructs.MSGHDR.byteSize());
        assertEquals(16, SocketStructs.IOVEC.byteSize());
        assertEquals(16, SocketStructs.CMSGHDR.byteSize());
        assertEquals(110, SocketStructs.SOCKADDR_UN.byteSize());
        assertEquals(8, SocketStructs.POLLFD.byteSize());
        assertEquals(12, SocketStructs.UCRED.byteSize());
        assertEquals(16, SocketStructs.MSG_IOV);
        assertEquals(32, SocketStructs.MSG_CONTROL);
        assertEquals(48, SocketStructs.MSG_FLAGS);
        assertEquals(24, SocketStructs.cmsgSpace(4 * 2));
        assertEquals(20, SocketStructs.cmsgLen(4));
    }

    @Test
    void wireStructSizesMatchTheSpec() {
        assertEquals(16, VfioUserProtocol.HEADER_SIZE);
        assertEquals(32, VfioUserProtocol.DMA_MAP_SIZE);
        assertEquals(24, VfioUserProtocol.DMA_UNMAP_SIZE);
        assertEquals(16, VfioUserProtocol.DEVICE_INFO_SIZE);
        assertEquals(32, VfioUserProtocol.REGION_INFO_SIZE);
        assertEquals(16, VfioUserProtocol.IRQ_INFO_SIZE);
        assertEquals(20, VfioUserProtocol.SET_IRQS_SIZE);
        assertEquals(16, VfioUserProtocol.REGION_RW_SIZE);
        assertEquals(24, VfioUserProtocol.WRITE_MULTI_ENTRY_SIZE);
    }

    @Test
    void parsesQemusCapabilities() {
        Capabilities c = Capabilities.parse(TestClient.QEMU_CAPS);
        assertEquals(16, c.maxMsgFds());
        assertEquals(1 << 20, c.maxDataXferSize());
        assertEquals(4096, c.pgsizes());
        assertEquals(65535, c.maxDmaMaps());
        assertTrue(c.writeMultiple());
        assertEquals(Capabilities.DEFAULTS, Capabilities.parse("{}"));
        assertThrows(IllegalArgumentException.class, () -> Capabilities.parse("[]"));
        assertThrows(IllegalArgumentException.class, () -> Capabilities.parse("{\"capabilities\":{\"max_msg_fds\":-1}}"));
        assertThrows(IllegalArgumentException.class, () -> Capabilities.parse("{\"capabilities\":{\"write_multiple\":1}}"));
        assertThrows(IllegalArgumentException.class, () -> Capabilities.parse("[".repeat(10_000)));
        assertThrows(IllegalArgumentException.class, () -> Capabilities.parse("{\"a\":1} x"));
    }

    @Test
    void serverJsonIsShortAndParsesBack() {
        Capabilities ours = new Capabilities(16, 1 << 20, 4096, 4096, false);
        String json = ours.toServerJson();
        assertTrue(json.length() < TestClient.QEMU_CAPS.length());
        Capabilities back = Capabilities.parse(json);
        assertEquals(16, back.maxMsgFds());
        assertEquals(4096, back.maxDmaMaps());
        assertFalse(back.writeMultiple());
    }
}
