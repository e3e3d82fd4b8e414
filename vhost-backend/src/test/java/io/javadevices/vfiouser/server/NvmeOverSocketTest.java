package io.javadevices.vfiouser.server;

import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.PciDevicePlugin;
import io.javadevices.vfiouser.client.TestClient;
import io.javadevices.vfiouser.client.TestClient.EventFd;
import io.javadevices.vfiouser.client.TestClient.Memfd;
import io.javadevices.vfiouser.sys.LibC;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Map;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.*;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED;
import static java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED;
import static java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The real NVMe plugin behind the real socket, driven like a guest driver would through QEMU: controller
 * enable, Identify, I/O queue creation with MSI-X eventfds, then a write and a read-back of one block.
 */
class NvmeOverSocketTest {

    @TempDir
    Path dir;

    // guest RAM layout (gpa = RAM_BASE + offset)
    static final long RAM_BASE = 0x1_0000_0000L;
    static final long ASQ = 0x0000, ACQ = 0x1000, IDENTIFY = 0x2000, IOSQ = 0x3000, IOCQ = 0x4000,
            WRITE_BUF = 0x5000, READ_BUF = 0x6000;
    static final int QSIZE = 16;

    private TestClient c;
    private Memfd ram;
    private int stride;
    private int adminTail, adminHead, ioTail, ioHead;
    private boolean adminPhase = true, ioPhase = true;
    private int cid = 1;
    /** With doorbells=polled: the BAR0 doorbell page this client mapped from the region's fd, else null. */
    private MemorySegment doorbellPage;

    private MemorySegment at(long offset) {
        return ram.memory.asSlice(offset);
    }

    private static void putInt(MemorySegment s, long o, int v) {
        s.set(JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), o, v);
    }

    private static void putLong(MemorySegment s, long o, long v) {
        s.set(JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), o, v);
    }

    private static int getInt(MemorySegment s, long o) {
        return s.get(JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), o);
    }

    private static int getShort(MemorySegment s, long o) {
        return s.get(JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), o) & 0xFFFF;
    }

    /** Writes an SQE and returns its command id. */
    private int sqe(long sqBase, int slot, int opcode, int nsid, long prp1, int cdw10, int cdw11, int cdw12) {
        MemorySegment e = at(sqBase + 64L * slot);
        e.asSlice(0, 64).fill((byte) 0);
        int id = cid++ & 0xFFFF;
        putInt(e, 0, opcode | id << 16);
        putInt(e, 4, nsid);
        putLong(e, 24, RAM_BASE + prp1);
        putInt(e, 40, cdw10);
        putInt(e, 44, cdw11);
        putInt(e, 48, cdw12);
        return id;
    }

    /** Polls a CQ slot for the expected phase; returns the status field (0 = success). */
    private int await(long cqBase, int slot, boolean phase, int id) throws Exception {
        long deadline = System.nanoTime() + 5_000_000_000L;
        MemorySegment e = at(cqBase + 16L * slot);
        while (((getShort(e, 14) & 1) == 1) != phase) {
            if (System.nanoTime() > deadline) {
                fail("no completion for command " + id);
            }
            Thread.onSpinWait();
        }
        assertEquals(id, getShort(e, 12));
        return getShort(e, 14) >>> 1;
    }

    /** A doorbell write: a plain store to the mapped page (as a guest's writel with QEMU's mapping), or a posted write message. */
    private void doorbell(long offset, int value) throws Exception {
        if (doorbellPage != null) {
            GuestMemory.storeIntRelease(doorbellPage, offset - 0x1000, value);
        } else {
            c.postedWrite(0, offset, TestClient.bytes(value, 4));
        }
    }

    private int admin(int opcode, int nsid, long prp1, int cdw10, int cdw11) throws Exception {
        int id = sqe(ASQ, adminTail, opcode, nsid, prp1, cdw10, cdw11, 0);
        adminTail = (adminTail + 1) % QSIZE;
        doorbell(0x1000, adminTail);
        int status = await(ACQ, adminHead, adminPhase, id);
        adminHead = (adminHead + 1) % QSIZE;
        if (adminHead == 0) {
            adminPhase = !adminPhase;
        }
        doorbell(0x1000 + stride, adminHead);
        return status;
    }

    private int io(int opcode, long buffer, long lba) throws Exception {
        int id = sqe(IOSQ, ioTail, opcode, 1, buffer, (int) lba, (int) (lba >>> 32), 0);
        ioTail = (ioTail + 1) % QSIZE;
        doorbell(0x1000 + 2L * stride, ioTail);
        int status = await(IOCQ, ioHead, ioPhase, id);
        ioHead = (ioHead + 1) % QSIZE;
        if (ioHead == 0) {
            ioPhase = !ioPhase;
        }
        doorbell(0x1000 + 3L * stride, ioHead);
        return status;
    }

    @Test
    void bringUpWriteAndReadBack() throws Exception {
        run(false);
    }

    /**
     * doorbells=polled: BAR0 is reported MMAP with one sparse area (the doorbell page) and its memfd; the
     * client maps that area, as QEMU does, and every doorbell is a store into it: no message at all.
     */
    @Test
    void polledDoorbellsThroughTheMappedSparseArea() throws Exception {
        run(true);
    }

    /** Asks for BAR0's region info the way QEMU does (argsz 32, then the size the server asked for) and maps its sparse area. */
    private MemorySegment mapDoorbellPage() throws Exception {
        TestClient.Reply first = c.regionInfo(0, 32);
        int full = first.body().getInt(0 /* argsz */);
        assertEquals(32 + 16 + 16, full, "struct + sparse cap header + one area");
        assertEquals(0, first.fds().length, "no fd until the caps fit (libvfio-user behaviour)");
        assertEquals(0, first.body().getInt(4 /* flags */) & REGION_FLAG_CAPS);

        TestClient.Reply info = c.regionInfo(0, full);
        ByteBuffer b = info.body();
        int flags = b.getInt(4 /* flags */);
        assertEquals(REGION_FLAG_READ | REGION_FLAG_WRITE | REGION_FLAG_MMAP | REGION_FLAG_CAPS, flags);
        assertEquals(32, b.getInt(12 /* cap_offset */));
        assertEquals(CAP_ID_SPARSE_MMAP, b.getShort(32) & 0xFFFF);
        assertEquals(1, b.getShort(34), "cap version");
        assertEquals(1, b.getInt(32 + 8 /* nr_areas */), "one area");
        long areaOffset = b.getLong(32 + 16 /* areas[] */);
        long areaSize = b.getLong(32 + 16 /* areas[] */ + 8);
        assertEquals(0x1000, areaOffset);
        assertEquals(0x1000, areaSize);
        assertEquals(1, info.fds().length, "exactly one fd for the region");
        int fd = info.fds()[0];
        long regionOffset = b.getLong(24 /* offset */);
        MemorySegment page = LibC.mmap(areaSize,
                LibC.PROT_READ | LibC.PROT_WRITE,
                LibC.MAP_SHARED, fd, regionOffset + areaOffset).reinterpret(areaSize);
        LibC.closeQuietly(fd); // the mapping keeps the memory
        // The other regions stay trapped: the MSI-X BAR must never be mapped.
        assertEquals(0, c.regionInfo(4, 32).body().getInt(4 /* flags */) & REGION_FLAG_MMAP);
        return page;
    }

    private void run(boolean polled) throws Exception {
        PciDevicePlugin plugin = PciDevicePlugin.find("nvme").orElseThrow();
        Map<String, String> options = polled ? Map.of("namespaces", "ram:16M", "doorbells", "polled")
                : Map.of("namespaces", "ram:16M");
        try (VfioUserServer server = VfioUserServer.builder().socket(dir.resolve("nvme.sock"))
                .device(ctx -> plugin.create(options, ctx)).build()) {
            server.start();
            ram = new Memfd(1 << 20);
            try (EventFd adminIrq = new EventFd(); EventFd ioIrq = new EventFd()) {
                c = TestClient.connect(server.socketPath());
                c.version();
                if (polled) {
                    doorbellPage = mapDoorbellPage();
                } else {
                    assertEquals(REGION_FLAG_READ | REGION_FLAG_WRITE, c.regionInfo(0, 32).body().getInt(4 /* flags */));
                }
                c.ok(CMD_DMA_MAP, TestClient.dmaMapPayload(RAM_BASE, 1 << 20, 0, 3), ram.fd);
                int vectors = c.irqInfo(IRQ_MSIX).body().getInt(12);
                assertTrue(vectors >= 2, "MSI-X vectors: " + vectors);
                c.ok(CMD_DEVICE_SET_IRQS, TestClient.le(20).putInt(20)
                        .putInt(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER).putInt(IRQ_MSIX).putInt(0).putInt(2).array(),
                        adminIrq.fd, ioIrq.fd);
                c.writeLong(REGION_CONFIG, 4, 2, 0x6); // memory + bus master
                int msix = server.device().config().msixCapabilityOffset();
                if (msix != 0) {
                    c.writeLong(REGION_CONFIG, msix + 2, 2, c.readLong(REGION_CONFIG, msix + 2, 2) | 0x8000);
                }

                long cap = c.readLong(0, 0x00, 8);
                stride = 4 << (int) ((cap >>> 32) & 0xF);
                assertTrue((cap & 0xFFFF) + 1 >= QSIZE, "MQES");
                c.writeLong(0, 0x24, 4, (QSIZE - 1) | (QSIZE - 1) << 16); // AQA
                c.writeLong(0, 0x28, 8, RAM_BASE + ASQ);
                c.writeLong(0, 0x30, 8, RAM_BASE + ACQ);
                c.writeLong(0, 0x14, 4, 1 | 6 << 16 | 4 << 20); // CC.EN, IOSQES 64, IOCQES 16
                long deadline = System.nanoTime() + 5_000_000_000L;
                while ((c.readLong(0, 0x1C, 4) & 1) == 0) {
                    assertTrue(System.nanoTime() < deadline, "CSTS.RDY");
                    Thread.sleep(1);
                }

                assertEquals(0, admin(0x06, 0, IDENTIFY, 1, 0), "Identify controller");
                assertNotEquals(0, at(IDENTIFY).get(JAVA_BYTE, 4), "serial number present");
                assertEquals(0, admin(0x06, 1, IDENTIFY, 0, 0), "Identify namespace 1");
                long nsze = at(IDENTIFY).get(JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
                assertTrue(nsze > 0);
                int format = at(IDENTIFY).get(JAVA_BYTE, 26) & 0xF;
                int blockSize = 1 << ((getInt(at(IDENTIFY), 128 + 4L * format) >>> 16) & 0xFF);
                assertTrue(blockSize >= 512 && blockSize <= 4096, "block size " + blockSize);

                assertEquals(0, admin(0x05, 0, IOCQ, 1 | (QSIZE - 1) << 16, 0x3 | 1 << 16), "Create I/O CQ");
                assertEquals(0, admin(0x01, 0, IOSQ, 1 | (QSIZE - 1) << 16, 0x1 | 1 << 16), "Create I/O SQ");

                for (int i = 0; i < blockSize; i++) {
                    at(WRITE_BUF).set(JAVA_BYTE, i, (byte) (i * 31 + 7));
                }
                ioIrq.await(0);
                assertEquals(0, io(0x01, WRITE_BUF, 3), "write");
                assertEquals(0, io(0x02, READ_BUF, 3), "read");
                assertEquals(-1, at(READ_BUF).asSlice(0, blockSize).mismatch(at(WRITE_BUF).asSlice(0, blockSize)));
                assertTrue(ioIrq.await(2000) > 0, "I/O completion interrupt on vector 1");
                Map<String, Long> stats = server.device().statistics();
                assertTrue(stats.get("io.commands") >= 2);
                if (polled) {
                    assertEquals(0L, stats.get("doorbell.mmio.sq"), "no doorbell message: " + stats);
                    assertEquals(0L, stats.get("doorbell.mmio.cq"));
                    assertTrue(stats.get("doorbell.polled.sq") >= 2, "tails found in the page: " + stats);
                } else {
                    assertTrue(stats.get("doorbell.mmio.sq") >= 2);
                }
                c.close();
                Fixture.idle(server);
                assertEquals(0L, server.resources().get("dma.maps"));
                assertEquals(0L, server.resources().get("irq.fds"));
            } finally {
                if (c != null) {
                    c.close();
                }
                if (doorbellPage != null) {
                    LibC.munmap(doorbellPage.address(), doorbellPage.byteSize());
                }
                ram.close();
            }
        }
    }
}
