package io.javadevices.nvme;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.javadevices.fuzzing.KnownIssues;
import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.nvme.driver.LinuxLikeDriver;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.GuestMemoryException;
import org.junit.jupiter.api.AfterAll;

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
 * builds admin and I/O commands (opcodes, fields, PRP1/PRP2, PRP list pages), and while the controller runs
 * them a second host thread keeps rewriting I/O SQEs, PRP list entries and the shadow doorbell / EventIdx
 * slots (DBBUF is on) with fuzzer-chosen values. Each input gets a fresh controller (TestHost +
 * {@link io.javadevices.nvme.driver.LinuxLikeDriver}), so an input replays the same way every time up to the
 * racing thread's timing.
 *
 * <p>Invariants: no exception reaches the controller's safety net (a command completed with Internal Error
 * after a throwable, logged by {@code NvmeController.commandFailed}) and the controller never sets CSTS.CFS;
 * every command completes unless the racing thread overwrote that queue's shadow doorbell (then the host
 * itself lost its doorbell); no completion arrives for a command the host never submitted unless the racing
 * thread wrote a valid index into that queue's shadow doorbell (only invalid values must be ignored); the device never writes the guard pages
 * around the area that commands may point at (no access outside the memory it was given); after a controller
 * reset (CC.EN 1 → 0 → 1) Identify Controller returns what it returned at bring-up.
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
    private static final int[] IO_OPCODES = {0x00, 0x01, 0x02, 0x04, 0x05, 0x08, 0x09};
    private static final int[] EDGE_DWORDS = {0, 1, 3, 4, 0xFFFC, 0xFFFF, 0x10000, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFC, -1};
    private static final long[] EDGE_OFFSETS = {0, 4, 508, 512, 4092, 4096, 1L << 32, 1L << 62, 1L << 63, -4, Long.MAX_VALUE & ~3};
    private static final int[] ADMIN_OPCODES = {0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x08, 0x09, 0x0A, 0x7C};

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
        private final long guardHigh;
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
            guardHigh = f.host.allocatePages(1);
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
            Racer racer = new Racer(script());
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
            checkDevice();
            // A reset must bring back a controller that serves Identify as before, whatever the host did.
            f.driver.disable();
            f.driver.enable();
            assertArrayEquals(identity, identifyController(), "Identify Controller after reset");
            checkDevice();
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
            int opcode = data.consumeBoolean() ? data.pickValue(ADMIN_OPCODES) : data.consumeInt(0, 255);
            Command c = fields(Command.of(opcode));
            if (opcode == 0x02 && data.consumeBoolean()) { // Get Log Page of a log the controller has, at any LPO
                long lpo = data.pickValue(EDGE_OFFSETS);
                c.cdw(10, data.pickValue(new int[] {0x01, 0x02, 0x03, 0x05}) | data.consumeInt(0, 1023) << 16)
                        .cdw(12, (int) lpo).cdw(13, (int) (lpo >>> 32));
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
            for (int i = 0; i < burst; i++) {
                int opcode = data.consumeInt(0, 4) == 0 ? data.consumeInt(0, 255) : data.pickValue(IO_OPCODES);
                Command c = fields(Command.of(opcode));
                if (opcode == 0x08 || opcode == 0x09) {
                    c.cdw(12, c.cdw(12) & 0xFFFF); // keep Write Zeroes / DSM ranges small
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

        private static byte[] halfWord(int value) {
            return new byte[] {(byte) value, (byte) (value >>> 8)};
        }

        private final class Racer implements Runnable {
            private final List<Write> writes;
            volatile boolean stop;

            Racer(List<Write> writes) {
                this.writes = writes;
            }

            @Override
            public void run() {
                if (writes.isEmpty()) {
                    return;
                }
                try {
                    while (!stop) {
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
