package io.javadevices.nvme;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.javadevices.fuzzing.KnownIssues;
import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.nvme.driver.LinuxLikeDriver;
import io.javadevices.nvme.model.Namespace;
import io.javadevices.nvme.model.NamespaceTable;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.GuestMemoryException;
import org.junit.jupiter.api.AfterAll;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Coverage-guided fuzzing (Jazzer) of the NVMe admin and I/O command path with a hostile host: the fuzzer
 * builds admin and I/O commands (opcodes, fields, PRP1/PRP2, PRP list pages; and, through {@link CommandShapes},
 * fields shaped per opcode: Copy range lists, Compare / Verify / Write Uncorrectable ranges, Write Zeroes DEAC,
 * SGL data pointers valid and malformed, Format NVM, Get LBA Status, Get Log Page of every LID at edge offsets,
 * Timestamp / Host Behavior Support data), and while the controller runs them a second host thread keeps
 * rewriting I/O SQEs, PRP list entries, built SGL segments and the shadow doorbell / EventIdx slots (DBBUF is on)
 * with fuzzer-chosen values, and detaches, re-attaches or reformats namespaces through the controller's
 * {@link NamespaceTable}. Each input gets a fresh controller (TestHost +
 * {@link io.javadevices.nvme.driver.LinuxLikeDriver}), so an input replays the same way every time up to the
 * racing thread's timing.
 *
 * <p>Invariants: no exception reaches the controller's safety net (a command completed with Internal Error
 * after a throwable, logged by {@code NvmeController.commandFailed}) and the controller never sets CSTS.CFS;
 * every command completes unless the racing thread overwrote that queue's shadow doorbell (then the host
 * itself lost its doorbell); no I/O command completes with Internal Error (the backends here cannot fail, so
 * that would be the controller's own fault, e.g. a namespace that changed under a command); no completion arrives for a command the host never submitted unless the racing
 * thread wrote a valid index into that queue's shadow doorbell (only invalid values must be ignored); the device never writes the guard pages
 * around the area that commands may point at (no access outside the memory it was given); after a controller
 * reset (CC.EN 1 → 0 → 1) Identify Controller returns what it returned at bring-up, and Identify Namespace gives
 * each namespace the size and LBA format the namespace table holds (after Format NVM or a replace).
 */
class NvmeRacingHostFuzzTest {
    private static final long RAM = 4L << 20;
    private static final int QUEUES = 2;
    private static final int DEPTH = 16;
    /** Data pages commands may point at; the last two hold PRP lists. Guard pages lie on both sides. */
    private static final int ARENA_PAGES = 16;
    private static final long WAIT_NANOS = 5_000_000_000L;
    private static final long HOST_DESYNC_WAIT_NANOS = 200_000_000L;
    private static final byte GUARD = (byte) 0xA5;
    private static final int INTERNAL_ERROR = 0x06;
    private static final int[] EDGE_DWORDS = {0, 1, 3, 4, 0xFFFC, 0xFFFF, 0x10000, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFC, -1};
    /** Pages for the structures the command shapes build (Copy range lists, SGL segments, feature data). */
    private static final int BUILT_PAGES = CommandShapes.SLOTS * CommandShapes.SLOT_BYTES / 4096;
    /**
     * Pages between the built structures and the high guard: an SGL Data Block that starts in the arena is at most
     * MDTS (2^5 pages, option mdts below) long, or the command is refused before its data is mapped, so a block
     * whose length the racing thread or the fuzzer chose still ends before the guard.
     */
    private static final int OVERRUN_PAGES = 32;

    @AfterAll
    static void knownIssuesSeen() {
        if (!KnownIssues.hits().isEmpty()) {
            System.out.println("[fuzz] nvme commands: known issues tolerated " + KnownIssues.hits());
        }
    }

    @FuzzTest(maxDuration = "20s")
    void commandsWithRacingHost(FuzzedDataProvider data) throws Exception {
        try (ControllerLog log = ControllerLog.capture();
             Fixture f = new Fixture(Map.of("queues", String.valueOf(QUEUES), "namespaces", "ram:1M,null:64M@4096",
                     "mdts", "5"), RAM)) {
            new Session(f, data, log).run();
        }
    }

    /** One input: bring-up, fuzzed commands under a racing host thread, checks, reset, Identify again. */
    private static final class Session {
        private final Fixture f;
        private final FuzzedDataProvider data;
        private final ControllerLog log;
        private final GuestMemory memory;
        private final long guardLow;
        private final long arena;
        private final long built;
        private final long guardHigh;
        private final CommandShapes shapes;
        private final NamespaceTable namespaces;
        private final byte[] identity;
        /**
         * Per queue (0 = admin): the racing thread overwrote its shadow SQ tail / CQ head, so the host's own
         * doorbell value may be lost and commands may never run. That is the host's doing, not the device's.
         */
        private final boolean[] clobbered = new boolean[QUEUES + 1];
        /**
         * Per queue: one of those values was a valid index, which moves the controller's view of the queue:
         * then it may also run stale entries (completions for commands the host never submitted). With only
         * invalid values the controller must ignore them (NVMe 1.4 §5.7: invalid doorbell write), so any such
         * completion is the device's fault.
         */
        private final boolean[] desynced = new boolean[QUEUES + 1];
        /** Per queue: CIDs submitted but not completed when their wait gave up (only on clobbered queues). */
        @SuppressWarnings("unchecked")
        private final Set<Integer>[] inFlight = new Set[QUEUES + 1];

        Session(Fixture f, FuzzedDataProvider data, ControllerLog log) throws GuestMemoryException {
            this.f = f;
            this.data = data;
            this.log = log;
            this.memory = f.host.memory();
            for (int qid = 0; qid <= QUEUES; qid++) {
                inFlight[qid] = new HashSet<>();
            }
            f.driver.bringUp(QUEUES, DEPTH, true);
            identity = identifyController();
            guardLow = f.host.allocatePages(1);
            arena = f.host.allocatePages(ARENA_PAGES);
            built = f.host.allocatePages(BUILT_PAGES + OVERRUN_PAGES); // a data block that runs past the arena
            guardHigh = f.host.allocatePages(1);                        // lands here, not in the guard
            namespaces = f.controller.namespaceTable();
            shapes = new CommandShapes(CommandShapes.Choices.of(data), memory, namespaces, arena, ARENA_PAGES - 2,
                    built, guardLow, guardHigh);
            memory.fill(guardLow, 4096, GUARD);
            memory.fill(guardHigh, 4096, GUARD);
            // Well-formed PRP lists to start from (data pages in order, the first list chained to the second);
            // the racing thread and the commands' own PRPs make them hostile.
            for (int i = 0; i < 1024; i++) {
                memory.writeLong(arena + 4096L * (ARENA_PAGES - 2) + 8L * i, arena + 4096L * (i % (ARENA_PAGES - 2)));
            }
            memory.writeLong(arena + 4096L * (ARENA_PAGES - 2) + 8L * 511, arena + 4096L * (ARENA_PAGES - 1));
        }

        void run() throws Exception {
            List<Write> writes = script();
            Racer racer = new Racer(writes, namespaceScript(writes));
            Thread thread = Thread.ofPlatform().name("racing-host").start(racer);
            try {
                int commands = data.consumeInt(1, 12);
                for (int i = 0; i < commands && data.remainingBytes() > 0; i++) {
                    if (data.consumeInt(0, 2) == 0) {
                        admin();
                    } else {
                        io();
                    }
                }
            } finally {
                racer.stop = true;
                thread.join();
            }
            for (NamespaceChange c : racer.changes) { // the namespaces back as they were (attached), for the checks
                namespaces.setAttached(c.nsid, true);
            }
            checkDevice();
            // A reset must bring back a controller that serves Identify as before, whatever the host did.
            f.driver.disable();
            f.driver.enable();
            assertArrayEquals(identity, identifyController(), "Identify Controller after reset");
            identifyNamespacesFollowTheTable();
            checkDevice();
        }

        /**
         * Identify Namespace of each attached namespace says what the table holds: the size in blocks and the LBA
         * format that a fuzzed Format NVM or the racing thread's replace gave it (the host's block device follows
         * these). Checked after the reset: by then no command that a clobbered doorbell left behind still runs.
         */
        private void identifyNamespacesFollowTheTable() {
            for (Namespace ns : namespaces.attachedList()) {
                byte[] id = f.driver.identify(0x00, ns.nsid());
                assertEquals(ns.blocks(), ByteBuffer.wrap(id).order(ByteOrder.LITTLE_ENDIAN).getLong(0),
                        "NSZE of namespace " + ns.nsid());
                assertEquals(1 << ns.lbaShift(), io.javadevices.nvme.FuzzTest.blockBytes(id), "LBA data size of namespace " + ns.nsid());
            }
        }

        private byte[] identifyController() {
            return Arrays.copyOf(f.driver.identify(0x01, 0), 72); // VID, SSVID, SN, MN, FR
        }

        private void checkDevice() throws GuestMemoryException {
            log.assertNoFailures();
            assertEquals(0, f.driver.readReg32(0x1C) & 2, "CSTS.CFS (controller fatal)");
            byte[] low = new byte[4096], high = new byte[4096];
            memory.read(guardLow, low, 0, 4096);
            memory.read(guardHigh, high, 0, 4096);
            byte[] pattern = new byte[4096];
            Arrays.fill(pattern, GUARD);
            assertArrayEquals(pattern, low, "device wrote the guard page below the command area");
            assertArrayEquals(pattern, high, "device wrote the guard page above the command area");
        }

        // ------------------------------------------------------------ fuzzed commands

        private void admin() {
            int opcode = data.consumeBoolean() ? data.pickValue(CommandShapes.ADMIN_OPCODES) : data.consumeInt(0, 255);
            Command c = fields(Command.of(opcode));
            shapes.newBurst();
            if (data.consumeBoolean()) { // fields that reach the command's work: LIDs at edge LPOs, Format, features
                shapes.admin(c);
            }
            int qid = c.cdw(10) & 0xFFFF;
            switch (opcode) {
                case 0x00, 0x04 -> { // never delete the host's own queues
                    if (qid <= QUEUES) {
                        c.cdw(10, c.cdw(10) & ~0xFFFF | QUEUES + 1);
                    }
                }
                case 0x0C -> {
                    return; // an AER completes only on an event: nothing to wait for
                }
                case 0x7C -> c.prp1(((long) c.cdw(7) << 32 | (c.cdw(6) & 0xFFFF_FFFFL)) | 8); // only invalid DBBUF configs: a valid one moves the host's slots
                default -> {
                }
            }
            HostQueue q = f.driver.adminQueue();
            Set<Integer> outstanding = new HashSet<>();
            outstanding.add(q.queue(c));
            q.ringSq();
            await(q, outstanding);
        }

        private void io() {
            HostQueue q = f.driver.ioQueue(data.consumeInt(1, QUEUES));
            int burst = Math.min(data.consumeInt(1, 4), q.capacity() - q.inflight());
            Set<Integer> outstanding = new HashSet<>();
            shapes.newBurst();
            for (int i = 0; i < burst; i++) {
                int opcode = data.consumeInt(0, 4) == 0 ? data.consumeInt(0, 255) : data.pickValue(CommandShapes.IO_OPCODES);
                Command c = fields(Command.of(opcode));
                if (opcode == 0x08 || opcode == 0x09) {
                    c.cdw(12, c.cdw(12) & 0xFFFF); // keep Write Zeroes / DSM ranges small
                }
                if (data.consumeBoolean()) { // LBAs near the edges, range lists, DEAC, PRPs or SGLs (PSDT)
                    shapes.io(c);
                }
                outstanding.add(q.queue(c));
            }
            q.ringSq();
            await(q, outstanding);
        }

        /**
         * Reaps until every command in {@code outstanding} completed. Completions for other CIDs are
         * commands the host never submitted (phantoms), except the admin queue's outstanding AER.
         */
        private void await(HostQueue q, Set<Integer> outstanding) {
            int submitted = outstanding.size();
            // Commands an earlier wait gave up on (their queue's doorbell was clobbered) may complete now.
            Set<Integer> earlier = inFlight[q.qid];
            long deadline = System.nanoTime() + WAIT_NANOS;
            List<Completion> strays = new ArrayList<>();
            while (!outstanding.isEmpty()) {
                for (Completion done : q.reap()) {
                    if (q.qid != 0 && done.sct() == 0 && done.sc() == INTERNAL_ERROR) {
                        // RAM and null backends cannot fail: an Internal Error is the controller's own fault
                        // (e.g. a namespace that changed under the command; it must get Invalid Namespace instead).
                        throw new AssertionError("queue " + q.qid + ": Internal Error " + done);
                    }
                    if (!outstanding.remove(done.cid()) && !earlier.remove(done.cid())
                            && !(q.qid == 0 && done.cid() == LinuxLikeDriver.AER_CID)) {
                        strays.add(done);
                    }
                }
                if (clobbered[q.qid] && System.nanoTime() > deadline - WAIT_NANOS + HOST_DESYNC_WAIT_NANOS) {
                    earlier.addAll(outstanding); // the racing host overwrote this queue's doorbells: lost
                    return;                      // (or late) commands are its doing
                }
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("queue " + q.qid + ": " + outstanding.size() + " of " + submitted
                            + " commands not completed; " + f.controller.statistics());
                }
                Thread.onSpinWait();
            }
            if (!strays.isEmpty() && !desynced[q.qid]) {
                String what = "queue " + q.qid + ": completions " + strays + " for commands never submitted";
                if (!q.shadowed()) {
                    throw new AssertionError(what);
                }
                KnownIssues.hit(KnownIssues.DBBUF_PHANTOM, what);
            }
            log.assertNoFailures();
        }

        /** The fields every command gets from the fuzzer: NSID, CDW2..3 and 10..15, MPTR, PRPs, flags. */
        private Command fields(Command c) {
            c.nsid(data.pickValue(new int[] {0, 1, 2, 3, -1, data.consumeInt()}));
            for (int dw = 10; dw <= 15; dw++) {
                c.cdw(dw, switch (data.consumeInt(0, 3)) {
                    case 0 -> data.consumeInt(0, 0x1FF); // small: LIDs, FIDs, CNS values, queue ids, block counts
                    case 1 -> data.pickValue(EDGE_DWORDS);
                    default -> data.consumeInt();
                });
            }
            if (data.consumeInt(0, 7) == 0) {
                c.cdw(2, data.consumeInt()).cdw(3, data.consumeInt());
                long mptr = address();
                c.cdw(4, (int) mptr).cdw(5, (int) (mptr >>> 32));
            }
            c.flags(data.consumeInt(0, 7) == 0 ? data.consumeInt(0, 255) : 0);
            return c.prp1(address()).prp2(address());
        }

        /**
         * An address a command may point at: inside the arena (any offset), or not guest RAM at all. Never
         * the guard pages, the queues or the driver's pages, so the guards catch any access the command did
         * not ask for.
         */
        private long address() {
            return switch (data.consumeInt(0, 7)) {
                case 0, 1, 2 -> arena + 4096L * data.consumeInt(0, ARENA_PAGES - 1);
                case 3 -> arena + 4096L * data.consumeInt(0, ARENA_PAGES - 1) + data.consumeInt(0, 4095);
                case 4 -> arena + 4096L * (ARENA_PAGES - 2) + 8L * data.consumeInt(0, 1023); // into the PRP lists
                case 5 -> RAM + 4096L * data.consumeInt(0, 16);
                case 6 -> data.pickValue(new long[] {0, -4096L, -1L, 1L << 63, Long.MAX_VALUE & -4096L, 1L << 40});
                default -> data.consumeLong() & ~3L; // anything (PRP entries are dword aligned)
            };
        }

        // ------------------------------------------------------------ the racing host thread

        /** One write the racing thread repeats: an address and the value it stores there (4 or 2 bytes). */
        private record Write(long address, int value, int bytes) {
            Write(long address, int value) {
                this(address, value, 4);
            }
        }

        private List<Write> script() {
            List<Write> writes = new ArrayList<>();
            int n = data.consumeInt(0, 12);
            for (int i = 0; i < n; i++) {
                switch (data.consumeInt(0, 3)) {
                    case 0 -> { // an I/O SQE dword: PRPs and MPTR get addresses, the rest anything
                        HostQueue q = f.driver.ioQueue(data.consumeInt(1, QUEUES));
                        int dw = data.consumeInt(0, 15);
                        long at = q.sqBase + 64L * data.consumeInt(0, DEPTH - 1);
                        if (dw >= 4 && dw <= 9) {
                            long a = address();
                            int pair = dw & ~1;
                            writes.add(new Write(at + 4L * pair, (int) a));
                            writes.add(new Write(at + 4L * pair + 4, (int) (a >>> 32)));
                        } else if (dw == 0) { // opcode and flags only: the CID is how the host matches completions
                            writes.add(new Write(at, data.consumeInt(0, 0xFFFF), 2));
                        } else {
                            writes.add(new Write(at + 4L * dw, data.consumeInt()));
                        }
                    }
                    case 1 -> { // a PRP list entry
                        long a = address();
                        long at = arena + 4096L * (ARENA_PAGES - 2) + 8L * data.consumeInt(0, 1023);
                        writes.add(new Write(at, (int) a));
                        writes.add(new Write(at + 4, (int) (a >>> 32)));
                    }
                    default -> { // a shadow doorbell or EventIdx slot of the admin or an I/O queue
                        int qid = data.consumeInt(0, QUEUES);
                        boolean eventIdx = data.consumeBoolean();
                        int value = data.consumeBoolean() ? data.consumeInt(0, DEPTH - 1) : data.consumeInt();
                        long page = eventIdx ? f.driver.eventIdxPage() : f.driver.shadowPage();
                        writes.add(new Write(page + 8L * qid + 4L * data.consumeInt(0, 1), value));
                        if (!eventIdx) {
                            clobbered[qid] = true;
                            desynced[qid] |= (value & 0xFFFF) < (qid == 0 ? LinuxLikeDriver.ADMIN_DEPTH : DEPTH);
                        }
                    }
                }
            }
            return writes;
        }

        /** What the racing thread does to a namespace (through the table, as Namespace Attachment / Format NVM do). */
        private static final int DETACH = 0, ATTACH = 1, REFORMAT_512 = 2, REFORMAT_4096 = 3;

        private record NamespaceChange(int nsid, int kind) {
        }

        /**
         * The racing host's second script, read after {@link #script} (inputs written for the doorbell races keep
         * their meaning): namespace 1 or 2 detached, re-attached or replaced by a copy in another LBA format, through
         * the controller's {@link NamespaceTable} while commands run (I/O must get Invalid Namespace or a normal
         * status, never a throwable, an Internal Error or a hang); and rewrites, added to {@code writes}, of the
         * SGL segments and Copy range lists the shapes built (an identifier dword, or an address from
         * {@link #address}; never a length, which could aim a Data Block at the guard).
         */
        private List<NamespaceChange> namespaceScript(List<Write> writes) {
            List<NamespaceChange> changes = new ArrayList<>();
            int n = data.consumeInt(0, 4);
            for (int i = 0; i < n; i++) {
                changes.add(new NamespaceChange(data.consumeInt(1, 2), data.consumeInt(DETACH, REFORMAT_4096)));
            }
            int m = data.consumeInt(0, 4);
            for (int i = 0; i < m; i++) {
                long at = built + (long) SGL_DESCRIPTOR_BYTES * data.consumeInt(0, BUILT_PAGES * 4096 / SGL_DESCRIPTOR_BYTES - 1);
                if (data.consumeBoolean()) {
                    writes.add(new Write(at + 12, data.consumeInt())); // reserved bytes 14:12 and the SGL identifier
                } else {
                    long a = address();
                    writes.add(new Write(at, (int) a));
                    writes.add(new Write(at + 4, (int) (a >>> 32)));
                }
            }
            return changes;
        }

        private static final int SGL_DESCRIPTOR_BYTES = 16;

        private static byte[] halfWord(int value) {
            return new byte[] {(byte) value, (byte) (value >>> 8)};
        }

        private final class Racer implements Runnable {
            private final List<Write> writes;
            final List<NamespaceChange> changes;
            volatile boolean stop;

            Racer(List<Write> writes, List<NamespaceChange> changes) {
                this.writes = writes;
                this.changes = changes;
            }

            @Override
            public void run() {
                if (writes.isEmpty() && changes.isEmpty()) {
                    return;
                }
                int next = 0;
                try {
                    while (!stop) {
                        if (!changes.isEmpty()) {
                            apply(changes.get(next++ % changes.size()));
                        }
                        for (Write w : writes) {
                            if (w.bytes == 4) {
                                memory.storeIntRelease(w.address, w.value);
                            } else {
                                memory.write(w.address, halfWord(w.value), 0, 2);
                            }
                        }
                        Thread.onSpinWait();
                    }
                } catch (GuestMemoryException e) {
                    throw new IllegalStateException(e); // only guest RAM addresses are written
                }
            }

            private void apply(NamespaceChange c) {
                switch (c.kind) {
                    case DETACH -> namespaces.setAttached(c.nsid, false);
                    case ATTACH -> namespaces.setAttached(c.nsid, true);
                    default -> {
                        int shift = c.kind == REFORMAT_512 ? 9 : 12;
                        // Changes are serialised on the table itself (NamespaceTable): holding it, nothing (a
                        // fuzzed Format NVM, later Namespace Management) can change the namespace between the
                        // look-up and the replace. The current namespace, never a saved one: it may be new.
                        synchronized (namespaces) {
                            Namespace ns = namespaces.allocated(c.nsid);
                            if (ns != null && !ns.formatInProgress() && ns.backend().size() % (1L << shift) == 0) {
                                namespaces.replace(ns.reformatted(shift));
                            }
                        }
                    }
                }
            }
        }
    }

    /**
     * Collects what {@code NvmeController} logs about throwables it caught (a command completed with
     * Internal Error) and fatal status, instead of printing a stack trace per execution.
     */
    static final class ControllerLog extends Handler implements AutoCloseable {
        private static final Logger LOGGER = Logger.getLogger(NvmeController.class.getName());
        private final List<LogRecord> failures = new CopyOnWriteArrayList<>();

        static ControllerLog capture() {
            ControllerLog log = new ControllerLog();
            LOGGER.addHandler(log);
            LOGGER.setUseParentHandlers(false);
            return log;
        }

        @Override
        public void publish(LogRecord r) {
            if (r.getThrown() != null || String.valueOf(r.getMessage()).contains("fatal")) {
                failures.add(r);
            }
        }

        /** Fails on anything collected, except known issues (tolerated or not, see {@link KnownIssues}). */
        void assertNoFailures() {
            for (LogRecord r : failures) {
                failures.remove(r);
                Throwable t = r.getThrown();
                if (t != null && Arrays.stream(t.getStackTrace()).anyMatch(e -> e.getClassName().endsWith(".LogPageCommand"))) {
                    KnownIssues.hit(KnownIssues.LOG_PAGE_OFFSET, t.toString());
                    continue;
                }
                AssertionError e = new AssertionError("controller: " + r.getMessage() + " "
                        + Arrays.toString(r.getParameters()));
                if (t != null) {
                    e.initCause(t);
                }
                throw e;
            }
        }

        @Override
        public void flush() {
        }

        @Override
        public void close() {
            LOGGER.removeHandler(this);
            LOGGER.setUseParentHandlers(true);
        }
    }
}
