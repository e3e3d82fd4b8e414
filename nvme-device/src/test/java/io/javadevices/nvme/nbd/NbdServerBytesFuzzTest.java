package io.javadevices.nvme.nbd;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.javadevices.nvme.backend.AsyncIo;
import io.javadevices.nvme.backend.IoVector;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

import static io.javadevices.nvme.nbd.NbdProtocol.*;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * Coverage-guided fuzzing (Jazzer) of the NBD client against a server whose bytes come from the fuzzer
 * ({@link NbdScriptedServer}: a mostly valid handshake, then replies with chosen magics, cookies, errors and
 * payload lengths, garbage, early closes, silence). Each input opens an {@link NbdBackend} with a 100 ms request
 * timeout and issues a mix of asynchronous ({@link InboxEngine}) and synchronous requests: reads into native,
 * {@code byte[]} and {@code long[]} memory with guard bytes around every buffer, plain and durable writes,
 * flushes, write zeroes, deallocations, in and out of range; sometimes it waits for a reconnection.
 *
 * <p>Invariants, per input (issue 14: bad input from the NBD server is a backend error, never a crash): opening
 * succeeds or throws an {@link IOException} (the constructor's documented failure; {@code open(String)} turns it
 * into an IllegalArgumentException), nothing else; a synchronous call returns or throws an IOException; every
 * asynchronous request completes exactly once, with its byte count (0 for the others) or a negated errno the
 * NVMe core maps, -EINVAL when out of range and never success on a read-only export; no byte outside a read's
 * buffer changes, a write's buffer never changes, and a read's buffer never changes after its completion; a read
 * completed from well-formed replies holds exactly the served data; every request the client sends is one the
 * negotiation allows (the server checks); nothing is logged as an internal error of the connection's threads
 * and none dies of an uncaught exception; close() returns with every thread of the backend ended, and the whole
 * input stays within a bound (a hang is a finding).
 *
 * <p>{@code mvn test} replays {@code NbdServerBytesFuzzTestInputs/serverBytes/}; {@code mvn verify} also fuzzes
 * (execution {@code fuzz-nbd-server} of the module pom). {@link #main} rewrites the seed inputs.
 */
class NbdServerBytesFuzzTest {
    private static final long TIMEOUT_NANOS = TimeUnit.MILLISECONDS.toNanos(100);
    /** Far beyond what an input needs (a stalled server costs a timeout, a reconnection ~100 ms): only a hang. */
    private static final long HANG_MILLIS = 20_000;
    private static final byte GUARD = 0x5A;
    private static final int GAP = 64;
    private static final int TAGS = 8;
    private static final int[] SEGMENT_LENGTHS = {4096, 512, 1000, 8192, 1, 3000};
    private static final long[] EFFECT_LENGTHS = {4096, 512, 64 << 10, 1 << 20, -1 /* the export's size */,
            3L << 29 /* 1.5 GiB: two trim pieces; deallocate only */};
    private static final Set ERRNOS = new Set(EPERM, EIO, ENOMEM, EINVAL, ENOSPC, EROFS, EOVERFLOW, EOPNOTSUPP,
            ENOTCONN);
    private static final boolean TRACE = Boolean.getBoolean("nbd.fuzz.trace");
    private static final Logger NBD_LOG = Logger.getLogger("io.javadevices.nvme.nbd");
    private static final List<LogRecord> INTERNAL_ERRORS = new CopyOnWriteArrayList<>();
    private static final AtomicInteger INPUTS = new AtomicInteger();
    private static Path dir;

    static {
        NBD_LOG.setUseParentHandlers(false); // hundreds of sessions lost on purpose: not for the console
        NBD_LOG.addHandler(new Handler() {
            @Override
            public void publish(LogRecord r) {
                if (r.getLevel().intValue() >= Level.SEVERE.intValue() || r.getThrown() != null) {
                    INTERNAL_ERRORS.add(r);
                }
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        });
    }

    @FuzzTest(maxDuration = "20s")
    void serverBytes(FuzzedDataProvider data) throws Exception {
        run(NbdFuzzChoices.of(data));
    }

    static void run(NbdFuzzChoices choices) throws Exception {
        NbdScriptedServer.Script script = NbdScriptedServer.Script.decode(choices);
        List<Op> ops = Op.decodeAll(choices);
        synchronized (NbdServerBytesFuzzTest.class) {
            if (dir == null) {
                dir = Files.createTempDirectory("nbd-fuzz");
                dir.toFile().deleteOnExit();
            }
        }
        Path socket = dir.resolve("s" + INPUTS.incrementAndGet());
        INTERNAL_ERRORS.clear();
        try (NbdScriptedServer server = new NbdScriptedServer(socket, script)) {
            new Client(server, socket, ops).runAndCheck();
            if (!INTERNAL_ERRORS.isEmpty()) {
                LogRecord r = INTERNAL_ERRORS.getFirst();
                throw new AssertionError("internal error logged: " + r.getMessage(), r.getThrown());
            }
            if (!server.violations().isEmpty()) {
                throw new AssertionError("the client broke the protocol: " + server.violations());
            }
            if (!server.stop()) {
                throw new AssertionError("the fake server's threads did not end"); // the harness itself
            }
        } finally {
            Files.deleteIfExists(socket);
        }
    }

    /** A tiny int set (no boxing in the checks). */
    private record Set(int... values) {
        boolean has(int v) {
            for (int x : values) {
                if (x == v) {
                    return true;
                }
            }
            return false;
        }
    }

    // ------------------------------------------------------------------ the client's plan

    /** One request of the client. */
    record Op(int kind, int memory, int[] segments, int where, int lengthChoice, boolean durable) {
        static final int READ = 0, WRITE = 1, FLUSH = 2, WRITE_ZEROES = 3, DEALLOCATE = 4, SYNC_READ = 5,
                SYNC_WRITE = 6, SYNC_FLUSH = 7, SYNC_WRITE_ZEROES = 8, SYNC_DEALLOCATE = 9, AWAIT_RECONNECT = 10;
        static final int NATIVE = 0, BYTES = 1, LONGS = 2;

        static List<Op> decodeAll(NbdFuzzChoices c) {
            List<Op> ops = new ArrayList<>();
            int n = c.range("ops", 1, TAGS);
            for (int i = 0; i < n; i++) {
                int kind = c.range("op", 0, 10);
                int memory = c.range("memory", 0, 2);
                int[] segments = new int[c.range("segments", 1, 3)];
                for (int s = 0; s < segments.length; s++) {
                    segments[s] = SEGMENT_LENGTHS[c.range("segment", 0, SEGMENT_LENGTHS.length - 1)];
                }
                ops.add(new Op(kind, memory, segments, c.range("where", 0, 4),
                        c.range("effectLength", 0, EFFECT_LENGTHS.length - 1), c.coin("durable")));
            }
            return ops;
        }

        boolean hasData() {
            return kind == READ || kind == WRITE || kind == SYNC_READ || kind == SYNC_WRITE;
        }

        boolean reads() {
            return kind == READ || kind == SYNC_READ;
        }

        boolean async() {
            return kind <= DEALLOCATE;
        }

        long dataBytes() {
            long n = 0;
            for (int s : segments) {
                n += s;
            }
            return n;
        }
    }

    /** Where one buffer of one request lives. */
    private record Region(int op, int memory, long at, long length, long diskOffset) {
    }

    // ------------------------------------------------------------------ one input

    private static final class Client {
        private final NbdScriptedServer server;
        private final Path socket;
        private final List<Op> ops;
        private final Arena arena = Arena.ofShared();
        private final MemorySegment[] memories = new MemorySegment[3];
        private final List<Region> regions = new ArrayList<>();
        private final long[] offsets;
        private final long[] lengths;
        private final int[] completions;
        private final int[] results;
        private final boolean[] outOfRange;
        private final byte[][] snapshots;
        private final long[][] pieceCookies;
        private final InboxEngine engine = new InboxEngine(TAGS);
        private final WatchedGroup group = new WatchedGroup();
        private volatile Throwable clientFailure;
        private NbdBackend backend;
        private NbdAsync async;
        private int issued;

        Client(NbdScriptedServer server, Path socket, List<Op> ops) {
            this.server = server;
            this.socket = socket;
            this.ops = ops;
            int n = ops.size();
            offsets = new long[n];
            lengths = new long[n];
            completions = new int[n];
            results = new int[n];
            outOfRange = new boolean[n];
            snapshots = new byte[n][];
            pieceCookies = new long[n][];
            long[] used = new long[3];
            for (int i = 0; i < n; i++) {
                Op op = ops.get(i);
                if (!op.hasData()) {
                    continue;
                }
                for (int s : op.segments()) {
                    used[op.memory()] += GAP;
                    regions.add(new Region(i, op.memory(), used[op.memory()], s, -1));
                    used[op.memory()] += s;
                }
            }
            for (int m = 0; m < 3; m++) {
                long bytes = used[m] + GAP;
                memories[m] = switch (m) {
                    case Op.NATIVE -> arena.allocate(bytes, 8);
                    case Op.BYTES -> MemorySegment.ofArray(new byte[(int) bytes]);
                    default -> MemorySegment.ofArray(new long[(int) (bytes + 7) / 8]);
                };
                memories[m].fill(GUARD);
            }
        }

        void runAndCheck() throws Exception {
            Thread client = Thread.ofPlatform().group(group).name("nbd-fuzz-client").start(() -> {
                try {
                    session();
                } catch (Throwable t) {
                    clientFailure = t;
                }
            });
            client.join(HANG_MILLIS);
            if (client.isAlive()) {
                AssertionError hang = new AssertionError("the input hangs (the client thread is stuck)");
                hang.setStackTrace(client.getStackTrace());
                throw hang;
            }
            try {
                if (clientFailure != null) {
                    throw new AssertionError("client: " + clientFailure, clientFailure);
                }
                if (!group.uncaught.isEmpty()) {
                    throw new AssertionError("a thread of the backend died", group.uncaught.getFirst());
                }
                for (Thread t : group.threads()) {
                    if (t.isAlive() && t != client) {
                        AssertionError left = new AssertionError("thread " + t.getName() + " outlives close()");
                        left.setStackTrace(t.getStackTrace());
                        throw left;
                    }
                }
                checkCompletions();
                checkMemory();
                if (TRACE) { // -Dnbd.fuzz.trace: what an input did, to check that a seed does what its name says
                    System.out.println("[nbd-fuzz] " + socket.getFileName() + " opened=" + (backend != null)
                            + " losses=" + (backend == null ? 0 : backend.connectionLosses()) + " clean="
                            + server.allClean() + " results=" + java.util.Arrays.toString(results));
                }
            } finally {
                arena.close();
            }
        }

        /** The client thread: open, issue, await, close. */
        private void session() throws Exception {
            try {
                backend = new NbdBackend(NbdUri.parse(NbdTestServers.uri(socket, "")), TIMEOUT_NANOS);
            } catch (IOException documented) {
                server.clientDone();
                return; // a refused or broken handshake: the namespace is an error at start
            }
            try {
                AsyncIo io = engine.open(backend);
                async = (NbdAsync) io;
                for (int i = 0; i < ops.size(); i++) {
                    Op op = ops.get(i);
                    place(i, op);
                    if (op.async()) {
                        issued++;
                        issue(io, i, op);
                    } else {
                        sync(i, op);
                    }
                    reap();
                }
                long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
                while (completedTags() < issued && System.nanoTime() - end < 0) {
                    engine.await(TimeUnit.MILLISECONDS.toNanos(5));
                    reap();
                }
                if (completedTags() < issued) {
                    throw new AssertionError("async requests without a completion after 5 s (timeout "
                            + TIMEOUT_NANOS / 1_000_000 + " ms): " + java.util.Arrays.toString(completions));
                }
            } finally {
                server.clientDone();
                backend.close();
                reap(); // a completion after close (none may come: each request completed once already)
            }
        }

        private int completedTags() {
            int n = 0;
            for (int i = 0; i < ops.size(); i++) {
                n += ops.get(i).async() && completions[i] > 0 ? 1 : 0;
            }
            return n;
        }

        private void reap() {
            engine.reap((tag, result) -> {
                if (tag < 0 || tag >= ops.size() || !ops.get(tag).async()) {
                    throw new AssertionError("a completion for tag " + tag + ", which was never submitted");
                }
                if (++completions[tag] == 1) {
                    results[tag] = result;
                    snapshots[tag] = snapshot(tag);
                    NbdRequest slot = async.slots[tag];
                    if (ops.get(tag).reads() && result > 0) {
                        long[] cookies = new long[slot.pieces];
                        for (int p = 0; p < cookies.length; p++) {
                            cookies[p] = slot.cookie(p);
                        }
                        pieceCookies[tag] = cookies;
                    }
                }
            });
        }

        /** Chooses the op's disk range from the export's size and fills its buffers (writes: the test's data). */
        private void place(int i, Op op) {
            long size = backend.size();
            long length = op.hasData() ? op.dataBytes() : EFFECT_LENGTHS[op.lengthChoice()];
            if (length < 0) {
                length = size;
            }
            if (op.kind() == Op.WRITE_ZEROES || op.kind() == Op.SYNC_WRITE_ZEROES) {
                length = Math.min(length, 1 << 20); // zeroes written as payload: keep the input fast
            }
            long offset = switch (op.where()) {
                case 1 -> size - length;
                case 2 -> Math.floorMod(i * 7919L * 512, Math.max(512, size - length)) & ~511L;
                case 3 -> size - length + 512;
                case 4 -> -512;
                default -> 0;
            };
            offsets[i] = offset;
            lengths[i] = length;
            // Flush has no range; a deallocation without trim or write zeroes is a no-op that may succeed anyway.
            boolean ranged = op.hasData() || op.kind() == Op.WRITE_ZEROES || op.kind() == Op.SYNC_WRITE_ZEROES;
            outOfRange[i] = ranged && (offset < 0 || length > size || offset > size - length);
            long disk = offset;
            for (int r = 0; r < regions.size(); r++) {
                Region region = regions.get(r);
                if (region.op() != i) {
                    continue;
                }
                regions.set(r, new Region(i, region.memory(), region.at(), region.length(), disk));
                if (!op.reads()) {
                    MemorySegment m = memories[region.memory()];
                    for (long j = 0; j < region.length(); j++) {
                        m.set(JAVA_BYTE, region.at() + j, NbdScriptedServer.written(disk + j));
                    }
                }
                disk += region.length();
            }
        }

        private IoVector vector(int i) {
            IoVector v = new IoVector(4);
            for (Region r : regions) {
                if (r.op() == i) {
                    v.add(memories[r.memory()].asSlice(r.at(), r.length()));
                }
            }
            return v;
        }

        private void issue(AsyncIo io, int tag, Op op) {
            switch (op.kind()) {
                case Op.READ -> io.read(tag, offsets[tag], vector(tag));
                case Op.WRITE -> io.write(tag, offsets[tag], vector(tag), op.durable());
                case Op.FLUSH -> io.flush(tag);
                case Op.WRITE_ZEROES -> io.writeZeroes(tag, offsets[tag], lengths[tag], op.durable());
                default -> io.deallocate(tag, offsets[tag], lengths[tag]);
            }
        }

        private void sync(int i, Op op) throws InterruptedException {
            if (op.kind() == Op.AWAIT_RECONNECT) { // the requests so far end, then a session is up again
                long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(1);
                while (completedTags() < issued && System.nanoTime() - end < 0) {
                    engine.await(TimeUnit.MILLISECONDS.toNanos(5));
                    reap();
                }
                while (!backend.connected() && System.nanoTime() - end < 0) {
                    Thread.sleep(2);
                }
                return;
            }
            MemorySegment buffer = null;
            if (op.hasData()) {
                Region first = regions.stream().filter(r -> r.op() == i).findFirst().orElseThrow();
                buffer = memories[first.memory()].asSlice(first.at(), first.length()); // one buffer: the first
                lengths[i] = first.length();
            }
            try {
                switch (op.kind()) {
                    case Op.SYNC_READ -> backend.read(offsets[i], buffer);
                    case Op.SYNC_WRITE -> backend.write(offsets[i], buffer);
                    case Op.SYNC_FLUSH -> backend.flush();
                    case Op.SYNC_WRITE_ZEROES -> backend.writeZeroes(offsets[i], lengths[i]);
                    default -> backend.deallocate(offsets[i], lengths[i]);
                }
                results[i] = (int) Math.min(lengths[i], Integer.MAX_VALUE);
                if (op.kind() == Op.SYNC_READ && server.allClean()) {
                    assertServed(buffer, offsets[i], "synchronous read " + i);
                }
            } catch (IOException documented) {
                results[i] = -1; // a failed request is an IOException, with the errno in its message
            }
            completions[i] = 1;
            snapshots[i] = snapshot(i);
        }

        private byte[] snapshot(int op) {
            java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
            for (Region r : regions) {
                if (r.op() == op) {
                    out.writeBytes(memories[r.memory()].asSlice(r.at(), r.length()).toArray(JAVA_BYTE));
                }
            }
            return out.toByteArray();
        }

        private static void assertServed(MemorySegment buffer, long diskOffset, String what) {
            for (long j = 0; j < buffer.byteSize(); j++) {
                if (buffer.get(JAVA_BYTE, j) != NbdScriptedServer.disk(diskOffset + j)) {
                    throw new AssertionError(what + " completed from well-formed replies but byte " + j
                            + " is not the served data");
                }
            }
        }

        private void checkCompletions() {
            if (backend == null) {
                return;
            }
            boolean readOnly = backend.readOnly();
            for (int i = 0; i < ops.size(); i++) {
                Op op = ops.get(i);
                if (op.kind() == Op.AWAIT_RECONNECT || !op.async()) {
                    continue;
                }
                String what = "request " + i + " " + op;
                if (completions[i] != 1) {
                    throw new AssertionError(what + " completed " + completions[i] + " times");
                }
                int result = results[i];
                if (result < 0) {
                    if (!ERRNOS.has(-result)) {
                        throw new AssertionError(what + " failed with " + result + ", not an errno the core maps");
                    }
                    if (outOfRange[i] && result != -EINVAL && result != -ENOTCONN && result != -EROFS) {
                        throw new AssertionError(what + " out of range failed with " + result + ", not -EINVAL");
                    }
                    continue;
                }
                long expected = op.kind() == Op.READ || op.kind() == Op.WRITE ? lengths[i] : 0;
                if (result != expected) {
                    throw new AssertionError(what + " completed with " + result + ", expected " + expected);
                }
                if (outOfRange[i]) {
                    throw new AssertionError(what + " succeeded out of range");
                }
                if (readOnly && op.kind() != Op.READ && op.kind() != Op.FLUSH) {
                    throw new AssertionError(what + " succeeded on a read-only export");
                }
                long[] cookies = pieceCookies[i];
                if (op.kind() == Op.READ && cookies != null) {
                    boolean clean = true;
                    for (long cookie : cookies) {
                        clean &= server.cleanRead(cookie);
                    }
                    if (clean) {
                        byte[] got = snapshots[i];
                        for (int j = 0; j < got.length; j++) {
                            if (got[j] != NbdScriptedServer.disk(offsets[i] + j)) {
                                throw new AssertionError(what + " completed from well-formed replies but byte " + j
                                        + " is not the served data");
                            }
                        }
                    }
                }
            }
        }

        /** Guards intact, write buffers unchanged, read buffers unchanged since their completion. */
        private void checkMemory() {
            for (int m = 0; m < 3; m++) {
                MemorySegment memory = memories[m];
                long at = 0;
                for (Region r : regions) {
                    if (r.memory() != m) {
                        continue;
                    }
                    assertGuard(memory, at, r.at(), m);
                    at = r.at() + r.length();
                }
                assertGuard(memory, at, memory.byteSize(), m);
            }
            for (int i = 0; i < ops.size(); i++) {
                if (!ops.get(i).hasData() || snapshots[i] == null) {
                    continue; // never issued (the open failed)
                }
                byte[] now = snapshot(i);
                if (!java.util.Arrays.equals(now, snapshots[i])) {
                    throw new AssertionError("request " + i + " " + ops.get(i) + ": its buffer changed after its "
                            + "completion");
                }
                if (!ops.get(i).reads()) {
                    long disk = offsets[i];
                    for (int j = 0; j < now.length; j++) {
                        if (now[j] != NbdScriptedServer.written(disk + j)) {
                            throw new AssertionError("request " + i + ": a write's buffer changed at " + j);
                        }
                    }
                }
            }
        }

        private static void assertGuard(MemorySegment memory, long from, long to, int m) {
            for (long j = from; j < to; j++) {
                if (memory.get(JAVA_BYTE, j) != GUARD) {
                    throw new AssertionError("guard byte " + j + " of memory " + m + " was written");
                }
            }
        }
    }

    /**
     * Rewrites the seed inputs: {@code main(<module>/src/test/resources/io/javadevices/nvme/nbd/
     * NbdServerBytesFuzzTestInputs/serverBytes)}. Each scenario names the decisions it changes (answer offsets
     * from the lowest value; {@code name#n} for the n-th occurrence).
     */
    public static void main(String[] args) throws IOException {
        Path out = Path.of(args[0]);
        Files.createDirectories(out);
        java.util.Map<String, java.util.Map<String, Integer>> seeds = new java.util.LinkedHashMap<>();
        // Six requests of every kind into every kind of memory, all answered well (the tail answers).
        java.util.Map<String, Integer> mix = java.util.Map.of("ops", 6, "op#1", Op.WRITE, "op#2", Op.FLUSH,
                "op#3", Op.WRITE_ZEROES, "op#4", Op.DEALLOCATE, "op#5", Op.SYNC_READ, "memory#1", Op.BYTES,
                "memory#0", Op.LONGS, "segments#0", 2, "durable#1", 1);
        seeds.put("correct-session", mix);
        seeds.put("wrong-cookie", with(mix, "actions", 1, "cookie", 1));
        seeds.put("short-read-payload", with(mix, "actions", 1, "payload", 1));
        seeds.put("oversized-reply", with(mix, "actions", 1, "payload", 3));
        seeds.put("error-reply", with(mix, "actions", 2, "error", 1));
        seeds.put("close-mid-payload", with(mix, "actions", 1, "payload", 2));
        seeds.put("go-unsupported-export-name", with(mix, "goItem#0", NbdScriptedServer.GoItem.UNSUP,
                "serverFlags", 1));
        seeds.put("export-refused", with(mix, "goItem#0", NbdScriptedServer.GoItem.ERROR, "infoDelta", 11));
        seeds.put("silent-server-then-reconnect", with(mix, "tail", NbdScriptedServer.Script.TAIL_STALL,
                "ops", 2, "op#1", Op.AWAIT_RECONNECT, "op#2", Op.SYNC_READ));
        for (var seed : seeds.entrySet()) {
            NbdFuzzChoices.Encoder encoder = NbdFuzzChoices.Encoder.of(seed.getValue());
            NbdScriptedServer.Script.decode(encoder);
            Op.decodeAll(encoder);
            Files.write(out.resolve(seed.getKey()), encoder.input());
        }
    }

    private static java.util.Map<String, Integer> with(java.util.Map<String, Integer> base, Object... more) {
        java.util.Map<String, Integer> m = new java.util.HashMap<>(base);
        for (int i = 0; i < more.length; i += 2) {
            m.put((String) more[i], (Integer) more[i + 1]);
        }
        return m;
    }

    /** The backend's threads are created in here (the monitor's reconnections too): their deaths are seen. */
    private static final class WatchedGroup extends ThreadGroup {
        final List<Throwable> uncaught = new CopyOnWriteArrayList<>();

        WatchedGroup() {
            super("nbd-fuzz");
        }

        @Override
        public void uncaughtException(Thread t, Throwable e) {
            uncaught.add(e);
        }

        List<Thread> threads() {
            Thread[] all = new Thread[activeCount() + 16];
            int n = enumerate(all);
            return java.util.Arrays.asList(all).subList(0, n);
        }
    }
}
