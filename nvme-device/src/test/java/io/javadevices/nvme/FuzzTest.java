package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.nvme.model.NamespaceTable;
import io.javadevices.nvme.spec.Nvme;
import io.javadevices.pci.GuestMemoryException;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Random;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Proves that malformed commands cannot hang or break the controller: random opcodes, fields, PRPs
 * (unmapped, unaligned, PRP lists pointing outside memory or into themselves), bad queue ids and sizes,
 * invalid doorbell values. Every command must complete (no hang), the controller must not go fatal, and a
 * correct command still works.
 *
 * <p>Fixed seed and 20 000 commands by default; long mode: {@code -Dfuzz.iterations=200000 -Dfuzz.seed=123}
 * (surefire passes both through). The test prints how many commands ran and the completion statuses seen.
 */
class FuzzTest {
    private static final long SEED = Long.decode(property("fuzz.seed", "0x5EED2026"));
    private static final int ITERATIONS = Integer.parseInt(property("fuzz.iterations", "20000"));

    /** A system property, or the default if it is unset or blank (an unset Maven property arrives as blank). */
    static String property(String key, String fallback) {
        String v = System.getProperty(key);
        return v == null || v.isBlank() || v.startsWith("${") ? fallback : v.trim();
    }

    @Test
    void malformedCommandsNeverBreakTheController() throws GuestMemoryException {
        try (Fixture f = Fixture.of("queues", "4", "namespaces", "ram:8M,null:64M@4096", "mdts", "5")) {
            f.driver.bringUp(1, 32, true);
            HostQueue q = f.driver.ioQueue(1);
            Random rnd = new Random(SEED);
            long scratch = f.host.allocatePages(64);
            long selfList = f.host.allocatePages(1);
            // A PRP list page whose entries point at itself, and one chained to itself at its last entry.
            for (int i = 0; i < 512; i++) {
                f.host.memory().writeLong(selfList + 8L * i, i == 511 ? selfList : selfList);
            }
            long outsideList = f.host.allocatePages(1);
            for (int i = 0; i < 512; i++) {
                f.host.memory().writeLong(outsideList + 8L * i, (1L << 40) + 4096L * i);
            }
            long built = f.host.allocatePages(CommandShapes.SLOTS * CommandShapes.SLOT_BYTES / 4096);
            // Data blocks go into the first 32 scratch pages; malformed SGLs may name the self-referencing list or
            // memory beyond RAM as a segment.
            CommandShapes shapes = new CommandShapes(CommandShapes.Choices.of(rnd), f.host.memory(),
                    f.controller.namespaceTable(), scratch, 32, built, selfList, f.host.ramSize());
            long[] prps = {0, scratch, scratch + 4096 * 7, scratch + 3, scratch + 512, 1L << 40, -4096L, -1L,
                    f.host.ramSize() - 4096, f.host.ramSize() - 8, selfList, selfList + 4088, outsideList, outsideList + 8};
            int adminDone = 0, ioDone = 0, doorbells = 0;
            long started = System.nanoTime();
            java.util.Map<String, Integer> statuses = new java.util.TreeMap<>();
            for (int i = 0; i < ITERATIONS; i++) {
                if (rnd.nextInt(4) == 0) {
                    shapes.newBurst();
                    Command c = randomAdmin(rnd, prps, shapes);
                    if (c == null) {
                        continue;
                    }
                    Completion done = f.driver.admin(c);
                    assertNotNull(done);
                    statuses.merge(statusName(done), 1, Integer::sum);
                    adminDone++;
                } else {
                    int[] opcodes = CommandShapes.IO_OPCODES;
                    Command c = Command.of(rnd.nextInt(5) == 0 ? rnd.nextInt(256) : opcodes[rnd.nextInt(opcodes.length)])
                            .nsid(new int[] {0, 1, 2, 3, -1, rnd.nextInt()}[rnd.nextInt(6)])
                            .slba(rnd.nextBoolean() ? rnd.nextInt(20000) : rnd.nextLong())
                            .cdw(12, rnd.nextBoolean() ? rnd.nextInt(300) : rnd.nextInt())
                            .cdw(10, rnd.nextBoolean() ? rnd.nextInt(300) : rnd.nextInt())
                            .cdw(11, rnd.nextInt())
                            .prp1(prps[rnd.nextInt(prps.length)])
                            .prp2(prps[rnd.nextInt(prps.length)])
                            .flags(rnd.nextInt(8) == 0 ? rnd.nextInt(256) : 0);
                    if (c.opcode() == 0x08 || c.opcode() == 0x09) {
                        c.cdw(12, c.cdw(12) & 0xFFFF); // keep Write Zeroes/DSM bounded in size
                    }
                    if (rnd.nextBoolean()) { // LBAs near the edges, Copy range lists, DEAC, PRPs or SGLs (PSDT)
                        shapes.newBurst();
                        shapes.io(c);
                    }
                    Completion done = q.execute(c, Duration.ofSeconds(10));
                    assertNotNull(done);
                    statuses.merge(statusName(done), 1, Integer::sum);
                    ioDone++;
                }
                if (rnd.nextInt(50) == 0) {
                    // Invalid doorbell writes: beyond queue size, unknown queues.
                    int qid = rnd.nextInt(8);
                    boolean cq = rnd.nextBoolean();
                    int value = 64 + rnd.nextInt(70000);
                    if (qid == 0 || qid == 1) {
                        value = Math.max(value, 1024);
                    }
                    f.host.mmioWrite32(0, 0x1000 + (2L * qid + (cq ? 1 : 0)) * 4, value);
                    doorbells++;
                }
            }
            System.out.printf("[fuzz] nvme-device: %d iterations (seed %#x) in %.1f s: %d admin + %d I/O commands completed,"
                            + " %d invalid doorbell writes; statuses (sct/sc: count) %s%n",
                    ITERATIONS, SEED, (System.nanoTime() - started) / 1e9, adminDone, ioDone, doorbells, statuses);
            // Scaled to the run length: with the default 20 000 iterations, > 500 admin and > 1500 I/O commands.
            assertTrue(adminDone > ITERATIONS / 40 && ioDone > ITERATIONS * 3 / 40);
            assertEquals(0, f.driver.readReg32(0x1C) & 2, "controller not fatal");
            assertEquals(1, f.driver.readReg32(0x1C) & 1);
            assertTrue(statuses.containsKey("ok"), "some commands succeeded");
            // A fuzzed Format NVM may have switched namespace 1 to 4096-byte blocks: ask it, as a host would.
            // (Namespace Attachment may also have detached it: attach it again first.)
            f.controller.namespaceTable().setAttached(1, true);
            byte[] identifyNamespace = f.driver.identify(0x00, 1);
            int blockBytes = blockBytes(identifyNamespace);
            assertEquals((8L << 20) / blockBytes, java.nio.ByteBuffer.wrap(identifyNamespace)
                    .order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong(0), "NSZE in the current format");
            int blocks = 4096 / blockBytes;
            long buf = f.host.allocatePages(1);
            byte[] data = new byte[4096];
            rnd.nextBytes(data);
            f.host.memory().write(buf, data, 0, 4096);
            assertTrue(q.execute(Command.write(1, 100, blocks, buf, 0)).ok());
            long back = f.host.allocatePages(1);
            assertTrue(q.execute(Command.read(1, 100, blocks, back, 0)).ok());
            byte[] got = new byte[4096];
            f.host.memory().read(back, got, 0, 4096);
            assertArrayEquals(data, got);
            assertNotNull(f.driver.identify(1, 0));
        }
    }

    /**
     * Namespace changes racing I/O: a thread detaches, re-attaches and replaces (512 ↔ 4096-byte blocks) namespace 1
     * through the controller's NamespaceTable, as Namespace Attachment and Format NVM do, while the host keeps
     * sending shaped reads, writes, compares, verifies, Write Uncorrectable, Write Zeroes, Copy and Flush to it
     * (PRPs or SGLs). Every command completes, with Invalid Namespace or the command's own status, never Internal
     * Error, nothing reaches the controller's safety net, the controller stays up; afterwards a detached namespace
     * is refused and the re-attached one works in its current format.
     */
    @Test
    void namespaceChangesRacingIoNeverBreakTheController() throws Exception {
        try (NvmeRacingHostFuzzTest.ControllerLog log = NvmeRacingHostFuzzTest.ControllerLog.capture();
             Fixture f = Fixture.of("queues", "2", "namespaces", "ram:2M", "mdts", "5")) {
            f.driver.bringUp(1, 32, true);
            HostQueue q = f.driver.ioQueue(1);
            NamespaceTable table = f.controller.namespaceTable();
            Random rnd = new Random(SEED);
            long scratch = f.host.allocatePages(48); // 16 data pages, then room for blocks that run past them
            long built = f.host.allocatePages(CommandShapes.SLOTS * CommandShapes.SLOT_BYTES / 4096);
            CommandShapes shapes = new CommandShapes(CommandShapes.Choices.of(rnd), f.host.memory(), table, scratch,
                    16, built, f.host.ramSize());
            AtomicBoolean stop = new AtomicBoolean();
            AtomicLong changes = new AtomicLong();
            Thread racer = Thread.ofPlatform().name("namespace-racer").start(() -> {
                Random r = new Random(SEED + 1);
                while (!stop.get()) {
                    switch (r.nextInt(3)) {
                        case 0 -> table.setAttached(1, false);
                        case 1 -> table.setAttached(1, true);
                        default -> {
                            synchronized (table) { // changes are serialised on the table: look-up and replace as one
                                table.replace(table.allocated(1).reformatted(r.nextBoolean() ? 9 : 12));
                            }
                        }
                    }
                    changes.incrementAndGet();
                    LockSupport.parkNanos(20_000); // let commands run between changes
                }
            });
            int[] opcodes = {Nvme.IO_READ, Nvme.IO_WRITE, Nvme.IO_COMPARE, Nvme.IO_VERIFY, Nvme.IO_WRITE_UNCORRECTABLE,
                    Nvme.IO_WRITE_ZEROES, Nvme.IO_COPY, Nvme.IO_FLUSH};
            java.util.Map<String, Integer> statuses = new java.util.TreeMap<>();
            try {
                for (int i = 0; i < 3000; i++) {
                    Command c = Command.of(opcodes[rnd.nextInt(opcodes.length)]).prp1(scratch).prp2(scratch + 4096);
                    shapes.newBurst();
                    shapes.io(c).nsid(1);
                    Completion done = q.execute(c, Duration.ofSeconds(10));
                    assertNotNull(done, "command " + i + " completed");
                    assertFalse(done.sct() == 0 && done.sc() == 0x06, "Internal Error: " + done);
                    statuses.merge(statusName(done), 1, Integer::sum);
                }
            } finally {
                stop.set(true);
                racer.join();
            }
            System.out.printf("[fuzz] nvme-device: 3000 I/O commands racing %d namespace changes; statuses %s%n",
                    changes.get(), statuses);
            log.assertNoFailures();
            assertEquals(0, f.driver.readReg32(0x1C) & 2, "controller not fatal");
            table.setAttached(1, false);
            Completion refused = q.execute(Command.read(1, 0, 1, scratch, 0));
            assertEquals(0, refused.sct());
            assertEquals(0x0B, refused.sc(), "I/O to a detached namespace: Invalid Namespace or Format");
            table.setAttached(1, true);
            int blocks = 4096 / blockBytes(f.driver.identify(0x00, 1));
            assertTrue(q.execute(Command.write(1, 0, blocks, scratch, 0)).ok(), "I/O to the re-attached namespace");
        }
    }

    /** The LBA data size of the format Identify Namespace's FLBAS names (bits 3:0; LBAF n at 128 + 4n, LBADS byte 2). */
    static int blockBytes(byte[] identifyNamespace) {
        int lbaf = identifyNamespace[26] & 0xF;
        int lbads = identifyNamespace[128 + 4 * lbaf + 2] & 0xFF;
        assertTrue(lbads == 9 || lbads == 12, "LBADS " + lbads);
        return 1 << lbads;
    }

    private static String statusName(Completion c) {
        return c.ok() ? "ok" : String.format("%d/%02x", c.sct(), c.sc());
    }

    /** A random admin command that cannot legally destroy the host's own queue 1 or hang (no AER). */
    static Command randomAdmin(Random rnd, long[] prps, CommandShapes shapes) {
        int[] interesting = CommandShapes.ADMIN_OPCODES;
        int opcode = rnd.nextInt(3) == 0 ? rnd.nextInt(256) : interesting[rnd.nextInt(interesting.length)];
        if (opcode == 0x0C) {
            return null; // AERs complete only on events
        }
        Command c = Command.of(opcode)
                .nsid(new int[] {0, 1, 2, 9, -1, rnd.nextInt()}[rnd.nextInt(6)])
                .cdw(10, rnd.nextBoolean() ? rnd.nextInt(0x20) | rnd.nextInt(4096) << 16 : rnd.nextInt())
                .cdw(11, rnd.nextBoolean() ? (1 | rnd.nextInt(8) << 16) : rnd.nextInt())
                .cdw(12, rnd.nextBoolean() ? 0 : rnd.nextInt())
                .prp1(prps[rnd.nextInt(prps.length)])
                .prp2(prps[rnd.nextInt(prps.length)])
                .flags(rnd.nextInt(8) == 0 ? rnd.nextInt(256) : 0);
        if (rnd.nextBoolean()) {
            shapes.admin(c);
        }
        int qid = c.cdw(10) & 0xFFFF;
        switch (opcode) {
            case 0x00, 0x04 -> {
                if (qid == 1) {
                    c.cdw(10, c.cdw(10) & ~0xFFFF | 3);
                }
            }
            case 0x01, 0x05 -> {
                // Creating queues on scratch is fine; never on the host's own qid 1 memory.
                if (qid == 1) {
                    c.cdw(10, c.cdw(10) & ~0xFFFF | 2);
                }
            }
            case 0x7C -> {
                // Only invalid DBBUF configs: a valid one would redirect the host's doorbells.
                c.prp1(prps[rnd.nextInt(prps.length)] | 8);
            }
            case 0x09 -> {
                if ((c.cdw(10) & 0xFF) == 0x07 || (c.cdw(10) & 0xFF) == 0x08) {
                    c.cdw(10, 0x01);
                }
            }
            case 0x0D -> {
                // Namespace Management: never delete (SEL 1h) namespace 1, whose data the end of the test checks;
                // creating namespaces and deleting others is fine.
                if ((c.cdw(10) & 0xF) == 1 && (c.cdw(1) == 1 || c.cdw(1) == -1)) {
                    c.nsid(3);
                }
            }
            default -> {
            }
        }
        return c;
    }
}
