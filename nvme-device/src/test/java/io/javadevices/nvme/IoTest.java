package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.pci.GuestMemoryException;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.*;

class IoTest {

    private static byte[] pattern(long seed, int length) {
        byte[] b = new byte[length];
        new Random(seed).nextBytes(b);
        return b;
    }

    private static void put(Fixture f, long address, byte[] data) {
        try {
            f.host.memory().write(address, data, 0, data.length);
        } catch (GuestMemoryException e) {
            throw new AssertionError(e);
        }
    }

    private static byte[] get(Fixture f, long address, int length) {
        byte[] out = new byte[length];
        try {
            f.host.memory().read(address, out, 0, length);
        } catch (GuestMemoryException e) {
            throw new AssertionError(e);
        }
        return out;
    }

    @Test
    void multiQueueRandomIoVerifiesData() throws Exception {
        try (Fixture f = Fixture.of("queues", "4", "namespaces", "ram:64M")) {
            int queues = f.driver.bringUp(4, 64, true);
            int perQueue = 1500;
            ExecutorService pool = Executors.newFixedThreadPool(queues);
            List<Future<?>> futures = new ArrayList<>();
            for (int qid = 1; qid <= queues; qid++) {
                HostQueue q = f.driver.ioQueue(qid);
                int region = qid;
                futures.add(pool.submit(() -> {
                    // Each queue owns a 4 MiB LBA region; a model map holds what each 4 KiB block should contain.
                    Random rnd = new Random(region);
                    int depth = 16;
                    long[] bufs = new long[depth];
                    for (int i = 0; i < depth; i++) {
                        bufs[i] = f.host.allocatePages(2);
                    }
                    Map<Integer, Long> model = new HashMap<>();
                    long baseLba = region * 8192L;
                    for (int n = 0; n < perQueue; n += depth) {
                        Map<Integer, Object[]> pending = new HashMap<>();
                        for (int i = 0; i < depth; i++) {
                            int block = rnd.nextInt(64);
                            boolean write = rnd.nextBoolean() || !model.containsKey(block);
                            // avoid two commands on the same block in one batch
                            if (pending.values().stream().anyMatch(p -> (int) p[0] == block)) {
                                continue;
                            }
                            long lba = baseLba + block * 8L;
                            int cid;
                            if (write) {
                                long seed = rnd.nextLong();
                                put(f, bufs[i], pattern(seed, 4096));
                                cid = q.queue(Command.write(1, lba, 8, bufs[i], 0));
                                model.put(block, seed);
                            } else {
                                cid = q.queue(Command.read(1, lba, 8, bufs[i], 0));
                            }
                            pending.put(cid, new Object[] {block, write, bufs[i], model.get(block)});
                        }
                        q.ringSq();
                        for (Completion c : q.awaitCompletions(pending.size(), Duration.ofSeconds(20))) {
                            assertTrue(c.ok(), c.toString());
                            Object[] p = pending.get(c.cid());
                            if (!(boolean) p[1]) {
                                assertArrayEquals(pattern((long) p[3], 4096), get(f, (long) p[2], 4096),
                                        "data of block " + p[0]);
                            }
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> fu : futures) {
                fu.get();
            }
            pool.shutdown();
            assertEquals(0, f.stat(NvmeStatistics.IO_ERRORS));
            assertTrue(f.stat(NvmeStatistics.IO_WRITES) > 0 && f.stat(NvmeStatistics.IO_READS) > 0);
            assertEquals(f.stat(NvmeStatistics.IO_WRITES) * 4096, f.stat(NvmeStatistics.IO_BYTES_WRITTEN));
            // Commands by opcode: Write 01h and Read 02h on the I/O queues, Identify 06h on the admin queue.
            assertEquals(f.stat(NvmeStatistics.IO_WRITES), f.stat("io.opcode.0x01"));
            assertEquals(f.stat(NvmeStatistics.IO_READS), f.stat("io.opcode.0x02"));
            assertTrue(f.stat("admin.opcode.0x06") >= 1, "Identify counted");
            assertTrue(f.stat("admin.opcode.0x05") >= queues, "Create I/O CQ counted once per queue");
        }
    }

    @Test
    void prpListsCrossingPagesAndChained() {
        // mdts 9 = 2 MiB: 512 pages need a chained PRP list (511 entries + pointer per list page).
        try (Fixture f = Fixture.of("queues", "1", "mdts", "9")) {
            f.driver.bringUp(1, 16, false);
            HostQueue q = f.driver.ioQueue(1);
            for (int[] shape : new int[][] {{512, 0}, {4096 + 512, 512}, {3 * 4096, 0}, {128 * 4096, 0},
                    {500 * 4096 - 1024, 1024}, {512 * 4096, 0}}) {
                int length = shape[0];
                int offset = shape[1];
                int pages = (offset + length + 4095) / 4096;
                long[] addr = new long[pages];
                for (int i = 0; i < pages; i++) {
                    // scattered pages: every other page
                    addr[i] = f.host.allocatePages(2);
                }
                long list = f.host.allocatePages(3);
                byte[] data = pattern(length, length);
                // scatter
                int done = 0;
                for (int i = 0; i < pages; i++) {
                    int start = i == 0 ? offset : 0;
                    int n = Math.min(4096 - start, length - done);
                    put(f, addr[i] + start, java.util.Arrays.copyOfRange(data, done, done + n));
                    done += n;
                }
                Command w = Command.write(1, 1000, length / 512, 0, 0);
                f.driver.setPrps(w, addr, offset, length, list);
                Completion c = q.execute(w);
                assertTrue(c.ok(), "write " + length + ": " + c);
                // read back into fresh pages
                long[] back = new long[pages];
                for (int i = 0; i < pages; i++) {
                    back[i] = f.host.allocatePages(1);
                }
                Command r = Command.read(1, 1000, length / 512, 0, 0);
                f.driver.setPrps(r, back, offset, length, list);
                assertTrue(q.execute(r).ok());
                byte[] out = new byte[length];
                done = 0;
                for (int i = 0; i < pages; i++) {
                    int start = i == 0 ? offset : 0;
                    int n = Math.min(4096 - start, length - done);
                    System.arraycopy(get(f, back[i] + start, n), 0, out, done, n);
                    done += n;
                }
                assertArrayEquals(data, out, "length " + length);
            }
        }
    }

    @Test
    void queueWraparoundSmallQueues() {
        try (Fixture f = Fixture.of("queues", "2", "namespaces", "null:1G")) {
            f.driver.bringUp(0 + 2, 2, true);
            for (int qid = 1; qid <= 2; qid++) {
                HostQueue q = f.driver.ioQueue(qid);
                long buf = f.host.allocatePages(1);
                for (int i = 0; i < 300; i++) {
                    assertTrue(q.execute(Command.read(1, i, 1, buf, 0)).ok());
                }
            }
            assertEquals(600, f.stat(NvmeStatistics.IO_READS));
        }
    }

    @Test
    void errorStatuses() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:1M")) {
            f.driver.bringUp(1, 32, true);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            long blocks = (1 << 20) / 512;
            // LBA out of range
            Completion c = q.execute(Command.read(1, blocks - 1, 2, buf, 0));
            assertEquals(0x80, c.sc());
            assertEquals(0, c.sct());
            c = q.execute(Command.read(1, -1L, 1, buf, 0));
            assertEquals(0x80, c.sc());
            // bad namespace
            assertEquals(0x0B, q.execute(Command.read(2, 0, 1, buf, 0)).sc());
            assertEquals(0x0B, q.execute(Command.read(0, 0, 1, buf, 0)).sc());
            // too large (MDTS 7 = 512 KiB = 1024 blocks)
            assertEquals(0x02, q.execute(Command.read(1, 0, 1025, buf, 0)).sc());
            // PRP outside guest memory
            assertEquals(0x04, q.execute(Command.read(1, 0, 1, 1L << 40, 0)).sc());
            assertEquals(0x04, q.execute(Command.write(1, 0, 8, f.host.ramSize() - 2048, 1L << 40)).sc());
            // PRP list outside memory
            assertEquals(0x04, q.execute(Command.read(1, 0, 24, buf, 1L << 40)).sc());
            // invalid PRP offsets
            assertEquals(0x13, q.execute(Command.read(1, 0, 1, buf + 2, 0)).sc());
            assertEquals(0x13, q.execute(Command.read(1, 0, 16, buf + 512, buf + 4)).sc());
            long list = f.host.allocatePages(1);
            try {
                f.host.memory().writeLong(list, buf + 512); // list entry with a page offset
                f.host.memory().writeLong(list + 8, buf);
            } catch (GuestMemoryException e) {
                throw new AssertionError(e);
            }
            assertEquals(0x13, q.execute(Command.read(1, 0, 16, buf + 512, list)).sc());
            assertEquals(0x13, q.execute(Command.read(1, 0, 8, buf + 512, buf + 8)).sc(), "PRP2 data pointer with offset");
            // unknown opcode, reserved PSDT 11b, fused (SGLs themselves: SglTest)
            assertEquals(0x01, q.execute(Command.of(0x7F).nsid(1)).sc());
            assertEquals(0x02, q.execute(Command.read(1, 0, 1, buf, 0).flags(0xC0)).sc());
            assertEquals(0x02, q.execute(Command.read(1, 0, 1, buf, 0).flags(0x01)).sc());
            assertTrue(f.stat(NvmeStatistics.IO_ERRORS) >= 12);
            // still works
            assertTrue(q.execute(Command.read(1, 0, 1, buf, 0)).ok());
        }
    }

    @Test
    void flushWriteZeroesAndDeallocate() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M")) {
            f.driver.bringUp(1, 32, true);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            put(f, buf, pattern(7, 4096));
            assertTrue(q.execute(Command.write(1, 16, 8, buf, 0)).ok());
            assertTrue(q.execute(Command.flush(1)).ok());
            assertTrue(q.execute(Command.flush(0xFFFF_FFFF)).ok());
            // write zeroes on the middle 4 blocks
            assertTrue(q.execute(Command.of(0x08).nsid(1).slba(18).cdw(12, 3)).ok());
            assertTrue(q.execute(Command.read(1, 16, 8, buf, 0)).ok());
            byte[] got = get(f, buf, 4096);
            byte[] want = pattern(7, 4096);
            java.util.Arrays.fill(want, 1024, 3072, (byte) 0);
            assertArrayEquals(want, got);
            // DSM deallocate of blocks 16..17
            long ranges = f.host.allocatePages(1);
            try {
                f.host.memory().writeInt(ranges + 4, 2);
                f.host.memory().writeLong(ranges + 8, 16);
            } catch (GuestMemoryException e) {
                throw new AssertionError(e);
            }
            assertTrue(q.execute(Command.of(0x09).nsid(1).prp1(ranges).cdw(10, 0).cdw(11, 4)).ok());
            assertTrue(q.execute(Command.read(1, 16, 2, buf, 0)).ok());
            assertArrayEquals(new byte[1024], get(f, buf, 1024));
            // DSM range out of range
            try {
                f.host.memory().writeLong(ranges + 8, 1L << 40);
            } catch (GuestMemoryException e) {
                throw new AssertionError(e);
            }
            assertEquals(0x80, q.execute(Command.of(0x09).nsid(1).prp1(ranges).cdw(11, 4)).sc());
            assertEquals(1, f.stat(NvmeStatistics.IO_FLUSHES) - 1);
        }
    }

    @Test
    void fourKibLbaNamespace() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M@4096,null:1G")) {
            f.driver.bringUp(1, 32, true);
            byte[] ns = f.driver.identify(0x00, 1);
            assertEquals(12, ns[130 + 4 * (ns[26] & 0xF)], "LBADS of the format FLBAS names");
            assertEquals(2048, java.nio.ByteBuffer.wrap(ns, 0, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong());
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(2);
            put(f, buf, pattern(3, 8192));
            assertTrue(q.execute(Command.write(1, 5, 2, buf, buf + 4096)).ok());
            long back = f.host.allocatePages(2);
            assertTrue(q.execute(Command.read(1, 5, 2, back, back + 4096)).ok());
            assertArrayEquals(pattern(3, 8192), get(f, back, 8192));
            assertEquals(0x80, q.execute(Command.read(1, 2047, 2, back, back + 4096)).sc());
            assertTrue(q.execute(Command.read(2, 5, 2, back, 0)).ok());
        }
    }
}
