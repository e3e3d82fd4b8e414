package io.javadevices.vfiouser.protocol;

import io.javadevices.vfiouser.client.TestClient;
import io.javadevices.vfiouser.sys.SocketStructs;
import io.javadevices.vfiouser.sys.Errno;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Random;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.*;
import static org.junit.jupiter.api.Assertions.*;

/** C struct sizes, vfio-user struct layouts, message decoding and capability parsing. */
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

    /** Sizes and offsets from the layouts, against the numbers in the vfio-user spec and linux/vfio.h. */
    @Test
    void wireStructsHaveTheSpecSizesAndOffsets() {
        assertEquals(16, WireStructs.HEADER.byteSize());
        assertEquals(12, offset(WireStructs.HEADER, "error"));
        assertEquals(4, WireStructs.VERSION.byteSize());
        assertEquals(32, WireStructs.DMA_MAP.byteSize());
        assertEquals(16, offset(WireStructs.DMA_MAP, "address"));
        assertEquals(24, WireStructs.DMA_UNMAP.byteSize());
        assertEquals(8, offset(WireStructs.DMA_UNMAP, "address"));
        assertEquals(16, WireStructs.DEVICE_INFO.byteSize());
        assertEquals(32, WireStructs.REGION_INFO.byteSize());
        assertEquals(12, offset(WireStructs.REGION_INFO, "cap_offset"));
        assertEquals(24, offset(WireStructs.REGION_INFO, "offset"));
        assertEquals(16, WireStructs.SPARSE_MMAP_CAP.byteSize());
        assertEquals(8, offset(WireStructs.SPARSE_MMAP_CAP, "nr_areas"));
        assertEquals(16, WireStructs.SPARSE_AREA.byteSize());
        assertEquals(16, WireStructs.IRQ_INFO.byteSize());
        assertEquals(20, WireStructs.SET_IRQS.byteSize());
        assertEquals(16, offset(WireStructs.SET_IRQS, "count"));
        assertEquals(16, WireStructs.REGION_ACCESS.byteSize());
        assertEquals(12, offset(WireStructs.REGION_ACCESS, "count"));
        assertEquals(8, WireStructs.WRITE_MULTI.byteSize());
        assertEquals(24, WireStructs.WRITE_MULTI_ENTRY.byteSize());
        assertEquals(16, offset(WireStructs.WRITE_MULTI_ENTRY, "data"));
        for (StructLayout s : List.of(WireStructs.HEADER, WireStructs.DMA_MAP, WireStructs.REGION_INFO,
                WireStructs.SET_IRQS, WireStructs.WRITE_MULTI_ENTRY)) {
            assertEquals(1, s.byteAlignment(), s + " must be readable at any offset of a message");
        }
    }

    /** The decoder reads what an independent little-endian encoder (ByteBuffer, as the test client) wrote. */
    @Test
    void decodesAMessageEncodedIndependently() throws VfioUserError {
        ByteBuffer b = ByteBuffer.allocate(32).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(32).putInt(DMA_FLAG_READ | DMA_FLAG_WRITE).putLong(0x2000).putLong(0xFFFF_0000_1000_0000L).putLong(1 << 20);
        Messages.Message m = new Messages().decode(header(CMD_DMA_MAP, 0), MemorySegment.ofArray(b.array()), 32,
                new Fds(1, false));
        assertEquals(new Messages.DmaMap(0xFFFF_0000_1000_0000L, 1 << 20, 0x2000, DMA_FLAG_READ | DMA_FLAG_WRITE, true), m);

        ByteBuffer w = ByteBuffer.allocate(20).order(ByteOrder.LITTLE_ENDIAN);
        w.putLong(0x1008).putInt(0).putInt(4).putInt(0x1234);
        Messages messages = new Messages();
        Messages.RegionAccess a = (Messages.RegionAccess) messages.decode(header(CMD_REGION_WRITE, 0),
                MemorySegment.ofArray(w.array()), 20, new Fds(0, false));
        assertTrue(a.write());
        assertEquals(0x1008, a.offset());
        assertEquals(0, a.region());
        assertEquals(4, a.count());
        assertSame(a, messages.decode(header(CMD_REGION_READ, 0), MemorySegment.ofArray(w.array()), 16,
                new Fds(0, false)), "region accesses reuse one view: a doorbell allocates no message");
    }

    /** Length, argsz, flags and fd rules, all from the one decoder, with the spec's errnos. */
    @Test
    void decodeRefusesMalformedMessagesWithTheirErrno() {
        MemorySegment body = MemorySegment.ofArray(new byte[64]);
        Fds none = new Fds(0, false);
        assertErrno(Errno.EINVAL, CMD_DMA_MAP, 0, body, 31, none);                 // shorter than the struct
        assertErrno(Errno.EINVAL, CMD_DMA_MAP, 0, body, 32, none);                 // argsz 0
        body.set(ValueLayout.JAVA_INT_UNALIGNED, 0, 40);
        assertErrno(Errno.EINVAL, CMD_DMA_MAP, 0, body, 32, none);                 // argsz beyond the body
        assertErrno(Errno.EINVAL, CMD_DMA_MAP, 0, body, 40, new Fds(2, false));    // two fds
        assertErrno(Errno.EINVAL, CMD_REGION_WRITE, 0, body, 20, new Fds(1, false)); // fd where none belongs
        assertErrno(Errno.EINVAL, CMD_DEVICE_GET_INFO, 0, body, 16, new Fds(0, true)); // fds dropped by the kernel
        assertErrno(Errno.EINVAL, CMD_DEVICE_GET_INFO, FLAG_ERROR, body, 16, none); // an error flag on a command
        assertErrno(Errno.EINVAL, CMD_DEVICE_RESET, 0, body, 4, none);              // reset has no body
        assertErrno(Errno.ENOSYS, CMD_DIRTY_PAGES, 0, body, 16, none);
        body.set(ValueLayout.JAVA_INT_UNALIGNED, 0, 24);
        body.set(ValueLayout.JAVA_INT_UNALIGNED, 4, DMA_UNMAP_FLAG_GET_DIRTY_BITMAP);
        assertErrno(Errno.ENOTSUP, CMD_DMA_UNMAP, 0, body, 24, none);
        ByteBuffer write = ByteBuffer.allocate(20).order(ByteOrder.LITTLE_ENDIAN).putLong(0).putInt(0).putInt(8);
        assertErrno(Errno.EINVAL, CMD_REGION_WRITE, 0, MemorySegment.ofArray(write.array()), 20, none); // count > data
    }

    /** Random bodies of every command: the decoder answers with a message or a VfioUserError, never anything else. */
    @Test
    void decodeOfRandomBytesNeverThrowsAnythingButAVfioUserError() {
        Random random = new Random(12);
        byte[] bytes = new byte[256];
        MemorySegment body = MemorySegment.ofArray(bytes);
        Messages messages = new Messages();
        int decoded = 0;
        for (int i = 0; i < 20_000; i++) {
            random.nextBytes(bytes);
            int command = 1 + random.nextInt(CMD_MAX + 2);
            int length = random.nextInt(bytes.length + 1);
            if (random.nextBoolean()) { // plausible argsz, counts and wr_cnt so the deeper checks run too
                body.set(ValueLayout.JAVA_INT_UNALIGNED, 0, random.nextInt(64));
                body.set(ValueLayout.JAVA_INT_UNALIGNED, 12, random.nextInt(16));
                body.set(ValueLayout.JAVA_INT_UNALIGNED, 16, random.nextInt(16));
                if (command == CMD_REGION_WRITE_MULTI) {
                    body.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, Math.max(0, (length - 8) / 24));
                }
            }
            try {
                assertNotNull(messages.decode(header(command, 0), body, length,
                        new Fds(random.nextInt(3), random.nextInt(10) == 0)));
                decoded++;
            } catch (VfioUserError e) {
                assertTrue(e.errno() > 0, "an errno for the reply header");
            }
        }
        assertTrue(decoded > 0, "some random messages are well-formed, so the accepting paths ran too");
    }

    private static void assertErrno(int errno, int command, int flags, MemorySegment body, int length, Fds fds) {
        VfioUserError e = assertThrows(VfioUserError.class,
                () -> new Messages().decode(header(command, flags), body, length, fds));
        assertEquals(Errno.name(errno), Errno.name(e.errno()));
    }

    private static long offset(StructLayout s, String field) {
        return s.byteOffset(MemoryLayout.PathElement.groupElement(field));
    }

    private static MemorySegment header(int command, int flags) {
        ByteBuffer h = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        h.putShort((short) 7).putShort((short) command).putInt(0).putInt(flags).putInt(0);
        return MemorySegment.ofArray(h.array());
    }

    private record Fds(int count, boolean truncated) implements ReceivedFds {
        @Override
        public int take(int i) {
            return 100 + i;
        }
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
