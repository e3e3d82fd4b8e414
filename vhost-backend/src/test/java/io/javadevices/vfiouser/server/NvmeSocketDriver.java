package io.javadevices.vfiouser.server;

import io.javadevices.pci.GuestMemory;
import io.javadevices.vfiouser.client.TestClient;
import io.javadevices.vfiouser.client.TestClient.Memfd;
import io.javadevices.vfiouser.sys.FileIdentity;
import io.javadevices.vfiouser.sys.LibC;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.*;
import static java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED;
import static java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED;
import static java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED;

/**
 * A small NVMe driver over a {@link TestClient} for the hostile-client tests: one client, guest RAM in a
 * memfd at {@link #RAM_BASE}, the admin queue and I/O queue 1 (polled completions, no interrupts), and
 * doorbells either as posted writes or, with {@code doorbells=polled}, as stores into the mapped page.
 */
final class NvmeSocketDriver {
    static final long RAM_BASE = 0x1_0000_0000L;
    /** Guest RAM offsets of the queues and buffers (all in the first 64 KiB). */
    static final long ASQ = 0x0000, ACQ = 0x1000, IDENTIFY = 0x2000, IOSQ = 0x3000, IOCQ = 0x4000, BUF = 0x5000;
    static final int QSIZE = 16;
    /** Data Transfer Error (NVMe 1.4 Figure 126, generic status 04h) as the CQE's status field (SCT 0). */
    static final int DATA_TRANSFER_ERROR = 0x04;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    final TestClient client;
    final Memfd ram;
    /** The doorbell page this client mapped (polled doorbells), or null. */
    MemorySegment doorbells;
    /** What the BAR0 region fd this client received is (polled doorbells), or null. */
    FileIdentity.FileStat doorbellFile;
    private int adminTail, adminHead, ioTail, ioHead;
    private boolean adminPhase = true, ioPhase = true;
    private int cid = 1;

    NvmeSocketDriver(TestClient client, Memfd ram) {
        this.client = client;
        this.ram = ram;
    }

    MemorySegment at(long offset) {
        return ram.memory.asSlice(offset);
    }

    /** VERSION, the doorbell page (if polled), DMA_MAP of all guest RAM, bus master, CC.EN, I/O queue 1. */
    void bringUp(boolean polled) throws Exception {
        client.version();
        if (polled) {
            mapDoorbellPage();
        }
        clearQueueMemory();
        client.ok(CMD_DMA_MAP, TestClient.dmaMapPayload(RAM_BASE, ram.memory.byteSize(), 0, DMA_FLAG_READ | DMA_FLAG_WRITE), ram.fd);
        client.writeLong(REGION_CONFIG, 4, 2, 0x6); // memory + bus master
        client.writeLong(0, 0x24, 4, (QSIZE - 1) | (QSIZE - 1) << 16); // AQA
        client.writeLong(0, 0x28, 8, RAM_BASE + ASQ);
        client.writeLong(0, 0x30, 8, RAM_BASE + ACQ);
        client.writeLong(0, 0x14, 4, 1 | 6 << 16 | 4 << 20); // CC.EN, IOSQES 64, IOCQES 16
        long deadline = System.nanoTime() + 5_000_000_000L;
        while ((client.readLong(0, 0x1C, 4) & 1) == 0) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("CSTS.RDY never set");
            }
            Thread.sleep(1);
        }
        check(admin(0x05, IOCQ, 1 | (QSIZE - 1) << 16, 0x1), "Create I/O CQ"); // PC, no interrupts
        check(admin(0x01, IOSQ, 1 | (QSIZE - 1) << 16, 0x1 | 1 << 16), "Create I/O SQ");
    }

    /**
     * Zeroes the queues before the controller sees them, as Linux does (nvme_alloc_queue's zeroed
     * dma_alloc_coherent, then memset of the CQ in nvme_init_queue at every enable). Tests hand one memfd
     * to successive clients: a CQ still holding the former client's entries (phase tag 1, command ids
     * from 1 again) would be read as this client's completions before the controller posted any.
     */
    private void clearQueueMemory() {
        at(ASQ).asSlice(0, BUF - ASQ).fill((byte) 0); // ASQ, ACQ, the Identify page, I/O SQ 1 and CQ 1
    }

    private static void check(int status, String what) {
        if (status != 0) {
            throw new AssertionError(what + " failed with status 0x" + Integer.toHexString(status));
        }
    }

    /** Maps BAR0's sparse area from the region's fd, as QEMU does with doorbells=polled. */
    private void mapDoorbellPage() throws IOException {
        int full = client.regionInfo(0, 32).body().getInt(0 /* argsz */);
        TestClient.Reply info = client.regionInfo(0, full);
        ByteBuffer b = info.body();
        long areaOffset = b.getLong(32 + 16 /* areas[] */);
        long areaSize = b.getLong(32 + 16 /* areas[] */ + 8);
        int fd = info.fds()[0];
        try {
            doorbellFile = FileIdentity.fstat(fd);
            doorbells = LibC.mmap(areaSize, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fd,
                    b.getLong(24 /* offset */) + areaOffset).reinterpret(areaSize);
        } finally {
            LibC.closeQuietly(fd);
        }
    }

    /** Unmaps the doorbell page (a client that did not keep it). */
    void unmapDoorbells() throws Exception {
        if (doorbells != null) {
            LibC.munmap(doorbells.address(), doorbells.byteSize());
            doorbells = null;
        }
    }

    /** A doorbell write (offset in BAR0): a store into the mapped page, or a posted write message. */
    void doorbell(long offset, int value) throws IOException {
        if (doorbells != null) {
            GuestMemory.storeIntRelease(doorbells, offset - 0x1000, value);
        } else {
            client.postedWrite(0, offset, TestClient.bytes(value, 4));
        }
    }

    private int sqe(long sqBase, int slot, int opcode, int nsid, long prp1, int cdw10, int cdw11) {
        MemorySegment e = at(sqBase + 64L * slot);
        e.asSlice(0, 64).fill((byte) 0);
        int id = cid++ & 0xFFFF;
        e.set(JAVA_INT_UNALIGNED.withOrder(LE), 0, opcode | id << 16);
        e.set(JAVA_INT_UNALIGNED.withOrder(LE), 4, nsid);
        e.set(JAVA_LONG_UNALIGNED.withOrder(LE), 24, prp1);
        e.set(JAVA_INT_UNALIGNED.withOrder(LE), 40, cdw10);
        e.set(JAVA_INT_UNALIGNED.withOrder(LE), 44, cdw11);
        return id;
    }

    /** Waits up to {@code millis} for the CQE in {@code slot} with {@code phase}: its status field, or -1 if none came. */
    int awaitCompletion(long cqBase, int slot, boolean phase, int id, long millis) {
        long deadline = System.nanoTime() + millis * 1_000_000L;
        MemorySegment e = at(cqBase + 16L * slot);
        while (((e.get(JAVA_SHORT_UNALIGNED.withOrder(LE), 14) & 1) == 1) != phase) {
            if (System.nanoTime() > deadline) {
                return -1;
            }
            Thread.onSpinWait();
        }
        if ((e.get(JAVA_SHORT_UNALIGNED.withOrder(LE), 12) & 0xFFFF) != id) {
            throw new AssertionError("completion for another command id");
        }
        return (e.get(JAVA_SHORT_UNALIGNED.withOrder(LE), 14) & 0xFFFF) >>> 1;
    }

    /** An admin command; its status (throws if it never completes). */
    int admin(int opcode, long prp1Offset, int cdw10, int cdw11) throws IOException {
        int id = sqe(ASQ, adminTail, opcode, 0, RAM_BASE + prp1Offset, cdw10, cdw11);
        adminTail = (adminTail + 1) % QSIZE;
        doorbell(0x1000, adminTail);
        int status = awaitCompletion(ACQ, adminHead, adminPhase, id, 5000);
        if (status < 0) {
            throw new AssertionError("no completion for admin opcode " + opcode);
        }
        adminHead = (adminHead + 1) % QSIZE;
        adminPhase ^= adminHead == 0;
        doorbell(0x1004, adminHead);
        return status;
    }

    /** Writes an I/O command (one block at {@code lba}, data at guest-physical {@code prp1}) without ringing. */
    int queueIo(int opcode, long prp1, long lba) {
        int id = sqe(IOSQ, ioTail, opcode, 1, prp1, (int) lba, (int) (lba >>> 32));
        ioTail = (ioTail + 1) % QSIZE;
        return id;
    }

    /** Rings the I/O SQ tail doorbell with the tail {@link #queueIo} reached. */
    void ringIo() throws IOException {
        doorbell(0x1008, ioTail);
    }

    /** Waits for the next I/O completion: its status, or -1 after {@code millis}. */
    int awaitIo(int id, long millis) throws IOException {
        int status = awaitCompletion(IOCQ, ioHead, ioPhase, id, millis);
        if (status >= 0) {
            ioHead = (ioHead + 1) % QSIZE;
            ioPhase ^= ioHead == 0;
            doorbell(0x100C, ioHead);
        }
        return status;
    }

    /** One I/O command: its status (throws if it never completes). */
    int io(int opcode, long prp1, long lba) throws IOException {
        int id = queueIo(opcode, prp1, lba);
        ringIo();
        int status = awaitIo(id, 5000);
        if (status < 0) {
            throw new AssertionError("no completion for I/O opcode " + opcode + " (CSTS 0x"
                    + Long.toHexString(client.readLong(0, 0x1C, 4)) + ")");
        }
        return status;
    }
}
