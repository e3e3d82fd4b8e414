package io.javadevices.nvme.nbd;

import io.javadevices.nvme.backend.AsyncIo;
import io.javadevices.nvme.backend.IoVector;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The NBD backend against real servers started here: {@code qemu-nbd} serving raw and qcow2 images and
 * {@code nbdkit}'s memory plugin with its {@code log} filter (which shows what reached the server, flags
 * included), {@code delay} filter (latency, so requests overlap), {@code fua}/{@code nozero} filters (servers
 * without FUA or Write Zeroes) and read-only mode.
 */
class NbdRealServerTest {
    private static final long SECOND = TimeUnit.SECONDS.toNanos(1);
    private static final int ENOTCONN = 107, EROFS = 30;
    @TempDir
    Path dir;
    private NbdTestServers servers;
    private NbdBackend backend;
    private final Arena arena = Arena.ofShared();

    @BeforeEach
    void setUp() {
        servers = new NbdTestServers(dir);
    }

    @AfterEach
    void tearDown() throws Exception {
        if (backend != null) {
            backend.close();
        }
        servers.close();
        arena.close();
    }

    private static IoVector vector(MemorySegment... segments) {
        IoVector v = new IoVector(8);
        for (MemorySegment s : segments) {
            v.add(s);
        }
        return v;
    }

    private static byte[] pattern(int n, int seed) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) (seed * 31 + i * 7 + (i >>> 9));
        }
        return b;
    }

    private List<String> log(Path logFile) throws IOException {
        return Files.readAllLines(logFile);
    }

    /** nbdkit's 64 MiB memory plugin; {@code --filter=...} arguments go before it, parameters after it. */
    private Path nbdkitMemory(String... filtersAndParams) throws Exception {
        List<String> args = new java.util.ArrayList<>();
        for (String a : filtersAndParams) {
            if (a.startsWith("--")) {
                args.add(a);
            }
        }
        args.add("memory");
        args.add("64M");
        for (String a : filtersAndParams) {
            if (!a.startsWith("--")) {
                args.add(a);
            }
        }
        return servers.nbdkit("kit.sock", args.toArray(String[]::new));
    }

    @Test
    void qcow2ImageThroughQemuNbdHasItsSizeAndKeepsTheData() throws Exception {
        NbdTestServers.require("qemu-img");
        Path image = dir.resolve("disk.qcow2");
        assertEquals(0, new ProcessBuilder("qemu-img", "create", "-q", "-f", "qcow2", image.toString(), "64M")
                .inheritIO().start().waitFor());
        Path socket = servers.qemuNbd("q.sock", image, "--format=qcow2");
        backend = NbdBackend.open(NbdTestServers.uri(socket, ""));
        assertEquals(64L << 20, backend.size());
        assertFalse(backend.readOnly());
        assertTrue(backend.volatileWriteCache(), "qemu-nbd takes NBD_CMD_FLUSH");
        byte[] data = pattern(64 * 1024, 1);
        backend.write(1 << 20, MemorySegment.ofArray(data.clone()));
        backend.flush();
        byte[] back = new byte[data.length];
        backend.read(1 << 20, MemorySegment.ofArray(back));
        assertArrayEquals(data, back);
        backend.close();
        backend = null;
        servers.killAll();
        // What the server wrote into the qcow2 image is there for any other reader: qemu-io compares it.
        Path expected = dir.resolve("expected.raw");
        Files.write(expected, data);
        Process io = new ProcessBuilder("qemu-io", "-f", "qcow2", "-r", "-c", "read -v " + (1 << 20) + " 16",
                image.toString()).redirectErrorStream(true).start();
        String out = new String(io.getInputStream().readAllBytes());
        assertEquals(0, io.waitFor(), out);
        assertTrue(out.contains(String.format("%02x %02x", data[0] & 0xFF, data[1] & 0xFF)), out);
    }

    @Test
    void manyRequestsAreInFlightTogetherAndCompleteOutOfOrder() throws Exception {
        Path logFile = dir.resolve("nbdkit.log");
        Path socket = nbdkitMemory("--threads=64", "--filter=log", "--filter=delay", "logfile=" + logFile,
                "wdelay=100ms"); // enough server threads that the read does not queue behind the writes
        backend = NbdBackend.open(NbdTestServers.uri(socket, ""));
        InboxEngine engine = new InboxEngine(33);
        AsyncIo io = engine.open(backend);
        MemorySegment[] buffers = new MemorySegment[32];
        for (int tag = 0; tag < 32; tag++) {
            // Native guest memory for most, heap memory for some (the unit-test host's kind): both must work.
            buffers[tag] = tag % 4 == 0 ? MemorySegment.ofArray(pattern(4096, tag))
                    : arena.allocate(4096, 4096).copyFrom(MemorySegment.ofArray(pattern(4096, tag)));
            io.write(tag, tag * 8192L, vector(buffers[tag]), false);
        }
        // A read submitted after the 32 delayed writes overtakes them all.
        MemorySegment readBuffer = arena.allocate(4096);
        io.read(32, 63L << 20, vector(readBuffer));
        int[] results = new int[33];
        int[] order = new int[33];
        assertEquals(33, engine.awaitCompletions(33, 10 * SECOND, results, order));
        assertEquals(32, order[0], "the undelayed read completes first");
        for (int tag = 0; tag < 33; tag++) {
            assertEquals(4096, results[tag], "tag " + tag);
        }
        // The server saw many writes begin before the first one ended: they were in flight together.
        List<String> lines = log(logFile);
        int begunBeforeFirstEnd = 0;
        for (String line : lines) {
            if (line.contains("...Write")) {
                break;
            }
            if (line.contains(" Write id=")) {
                begunBeforeFirstEnd++;
            }
        }
        assertTrue(begunBeforeFirstEnd >= 8, "writes in flight together at the server: " + begunBeforeFirstEnd);
        // And the data came through: read everything back with many reads in flight.
        MemorySegment[] back = new MemorySegment[32];
        for (int tag = 0; tag < 32; tag++) {
            back[tag] = tag % 2 == 0 ? MemorySegment.ofArray(new byte[4096]) : arena.allocate(4096);
            io.read(tag, tag * 8192L, vector(back[tag].asSlice(0, 1024), back[tag].asSlice(1024, 3072)));
        }
        assertEquals(32, engine.awaitCompletions(32, 10 * SECOND, results, null));
        for (int tag = 0; tag < 32; tag++) {
            assertArrayEquals(pattern(4096, tag), back[tag].toArray(JAVA_BYTE), "tag " + tag);
        }
    }

    @Test
    void requestsLargerThanTheServersMaximumAreSplit() throws Exception {
        Path logFile = dir.resolve("nbdkit.log");
        // The blocksize-policy filter advertises a 64 KiB maximum block size (and refuses larger requests).
        Path socket = nbdkitMemory("--filter=log", "--filter=blocksize-policy", "logfile=" + logFile,
                "blocksize-maximum=64K", "blocksize-error-policy=error");
        backend = NbdBackend.open(NbdTestServers.uri(socket, ""));
        byte[] data = pattern(300 * 1024, 9);
        backend.write(4096, MemorySegment.ofArray(data.clone()));
        byte[] back = new byte[data.length];
        backend.read(4096, MemorySegment.ofArray(back));
        assertArrayEquals(data, back);
        assertTrue(log(logFile).stream().filter(l -> l.contains(" Write id=")).count() >= 5, "split into 64 KiB writes");
        assertTrue(log(logFile).stream().noneMatch(l -> l.contains(" Write id=") && !l.matches(".*count=0x(10000|[0-9a-f]{1,4}) .*")),
                "no write above 64 KiB");
    }

    @Test
    void fuaWritesAndFlushReachTheServer() throws Exception {
        Path logFile = dir.resolve("nbdkit.log");
        Path socket = nbdkitMemory("--filter=log", "logfile=" + logFile);
        backend = NbdBackend.open(NbdTestServers.uri(socket, ""));
        InboxEngine engine = new InboxEngine(4);
        AsyncIo io = engine.open(backend);
        io.write(0, 0x3000, vector(arena.allocate(4096)), true);
        io.write(1, 0x5000, vector(arena.allocate(4096)), false);
        int[] results = new int[4];
        assertEquals(2, engine.awaitCompletions(2, 5 * SECOND, results, null));
        io.flush(2);
        assertEquals(1, engine.awaitCompletions(1, 5 * SECOND, results, null));
        assertEquals(0, results[2]);
        List<String> lines = log(logFile);
        assertTrue(lines.stream().anyMatch(l -> l.contains(" Write id=") && l.contains("offset=0x3000") && l.contains("fua=1")), lines.toString());
        assertTrue(lines.stream().anyMatch(l -> l.contains(" Write id=") && l.contains("offset=0x5000") && l.contains("fua=0")), lines.toString());
        assertTrue(lines.stream().anyMatch(l -> l.contains(" Flush id=")), lines.toString());
    }

    @Test
    void withoutFuaADurableWriteIsFollowedByAFlushBeforeItCompletes() throws Exception {
        Path logFile = dir.resolve("nbdkit.log");
        // log outermost: it sees what the client sends; the fua filter below it stops advertising FUA.
        Path socket = nbdkitMemory("--filter=log", "--filter=fua", "logfile=" + logFile);
        backend = NbdBackend.open(NbdTestServers.uri(socket, ""));
        assertFalse(backend().export().canFua(), "fuamode=none (the default) hides FUA");
        InboxEngine engine = new InboxEngine(4);
        AsyncIo io = engine.open(backend);
        io.write(0, 0x7000, vector(arena.allocate(4096)), true);
        int[] results = new int[4];
        assertEquals(1, engine.awaitCompletions(1, 5 * SECOND, results, null));
        assertEquals(4096, results[0]);
        List<String> lines = log(logFile);
        int write = indexOf(lines, " Write id=");
        int flush = indexOf(lines, " Flush id=");
        assertTrue(write >= 0 && lines.get(write).contains("fua=0"), lines.toString());
        assertTrue(flush > write, "the flush follows the write: " + lines);
    }

    private NbdConnection backend() {
        return backend.connection();
    }

    private static int indexOf(List<String> lines, String text) {
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).contains(text)) {
                return i;
            }
        }
        return -1;
    }

    @Test
    void writeZeroesAndDeallocateMapToNbdZeroAndReadBackZeroes() throws Exception {
        Path logFile = dir.resolve("nbdkit.log");
        Path socket = nbdkitMemory("--filter=log", "logfile=" + logFile);
        backend = NbdBackend.open(NbdTestServers.uri(socket, ""));
        assertTrue(backend.deallocatedReadsZero(), "deallocation is a Write Zeroes that may punch holes");
        backend.write(0, MemorySegment.ofArray(pattern(64 * 1024, 3)));
        backend.writeZeroes(0x1000, 0x2000);
        backend.deallocate(0x8000, 0x4000);
        byte[] back = new byte[64 * 1024];
        backend.read(0, MemorySegment.ofArray(back));
        byte[] expected = pattern(64 * 1024, 3);
        java.util.Arrays.fill(expected, 0x1000, 0x3000, (byte) 0);
        java.util.Arrays.fill(expected, 0x8000, 0xC000, (byte) 0);
        assertArrayEquals(expected, back);
        List<String> lines = log(logFile);
        assertTrue(lines.stream().anyMatch(l -> l.contains(" Zero id=") && l.contains("offset=0x1000")
                && l.contains("count=0x2000") && l.contains("trim=0")), "Write Zeroes keeps the blocks: " + lines);
        assertTrue(lines.stream().anyMatch(l -> l.contains(" Zero id=") && l.contains("offset=0x8000")
                && l.contains("count=0x4000") && l.contains("trim=1")), "deallocate may punch a hole: " + lines);
    }

    @Test
    void withoutWriteZeroesDeallocateIsATrimAndWriteZeroesWritesZeroes() throws Exception {
        Path logFile = dir.resolve("nbdkit.log");
        Path socket = nbdkitMemory("--filter=log", "--filter=nozero", "logfile=" + logFile, "zeromode=none");
        backend = NbdBackend.open(NbdTestServers.uri(socket, ""));
        assertFalse(backend.deallocatedReadsZero(), "NBD_CMD_TRIM promises no zeroes");
        backend.write(0, MemorySegment.ofArray(pattern(0x10000, 4)));
        backend.writeZeroes(0x1000, 0x3000);
        backend.deallocate(0x8000, 0x4000);
        byte[] back = new byte[0x4000];
        backend.read(0, MemorySegment.ofArray(back));
        for (int i = 0x1000; i < 0x4000; i++) {
            assertEquals(0, back[i], "zeroed at " + i);
        }
        assertEquals(pattern(0x10000, 4)[0xFFF], back[0xFFF]);
        List<String> lines = log(logFile);
        assertTrue(lines.stream().noneMatch(l -> l.contains(" Zero id=")), lines.toString());
        assertTrue(lines.stream().anyMatch(l -> l.contains(" Write id=") && l.contains("offset=0x1000")
                && l.contains("count=0x3000")), "zeroes written: " + lines);
        assertTrue(lines.stream().anyMatch(l -> l.contains(" Trim id=") && l.contains("offset=0x8000")), lines.toString());
    }

    @Test
    void readOnlyExportIsReportedAndRefusesWrites() throws Exception {
        Path socket = servers.nbdkit("ro.sock", "-r", "memory", "1M");
        backend = NbdBackend.open(NbdTestServers.uri(socket, ""));
        assertTrue(backend.readOnly());
        InboxEngine engine = new InboxEngine(4);
        AsyncIo io = engine.open(backend);
        io.write(0, 0, vector(arena.allocate(512)), false);
        io.writeZeroes(1, 0, 512, false);
        io.deallocate(2, 0, 512);
        int[] results = new int[4];
        assertEquals(3, engine.awaitCompletions(3, 5 * SECOND, results, null));
        assertEquals(-EROFS, results[0]);
        assertEquals(-EROFS, results[1]);
        assertEquals(-EROFS, results[2]);
        assertThrows(IOException.class, () -> backend.write(0, arena.allocate(512)));
        backend.read(0, arena.allocate(512)); // reads still work
    }

    @Test
    void unknownExportOnQemuNbdIsAClearError() throws Exception {
        Path image = dir.resolve("disk.raw");
        Files.write(image, new byte[1 << 20]);
        Path socket = servers.qemuNbd("q.sock", image, "--format=raw", "--export-name=disk");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> NbdBackend.open(NbdTestServers.uri(socket, "nope")));
        assertTrue(e.getMessage().contains("export 'nope' not found on " + socket), e.getMessage());
        backend = NbdBackend.open(NbdTestServers.uri(socket, "disk"));
        assertEquals(1 << 20, backend.size());
    }

    @Test
    void serverKilledMidIoFailsRequestsAndARestartedServerServesAgain() throws Exception {
        Path image = dir.resolve("disk.raw");
        Files.write(image, new byte[4 << 20]);
        // nbdkit's file plugin with a long read delay: the reads are surely in flight when it is killed.
        Path socket = servers.nbdkit("k.sock", "--filter=delay", "file", image.toString(), "rdelay=5000ms");
        backend = NbdBackend.open(NbdTestServers.uri(socket, ""));
        byte[] data = pattern(8192, 5);
        backend.write(8192, MemorySegment.ofArray(data.clone()));
        backend.flush();
        InboxEngine engine = new InboxEngine(8);
        AsyncIo io = engine.open(backend);
        for (int tag = 0; tag < 8; tag++) {
            io.read(tag, tag * 4096L, vector(arena.allocate(4096)));
        }
        servers.killAll();
        int[] results = new int[8];
        assertEquals(8, engine.awaitCompletions(8, 5 * SECOND, results, null), "no request hangs");
        for (int tag = 0; tag < 8; tag++) {
            assertEquals(-ENOTCONN, results[tag], "tag " + tag);
        }
        assertEquals(1, backend.connectionLosses());
        IOException down = assertThrows(IOException.class, () -> backend.read(0, arena.allocate(512)));
        assertTrue(down.getMessage().contains("ENOTCONN"), down.getMessage());
        // The same export comes back (without the delay): the same backend serves again, data intact.
        servers.nbdkit("k.sock", "file", image.toString());
        MemorySegment back = arena.allocate(8192);
        long end = System.nanoTime() + 10 * SECOND;
        while (true) {
            io.read(0, 8192, vector(back));
            assertEquals(1, engine.awaitCompletions(1, 5 * SECOND, results, null));
            if (results[0] != -ENOTCONN || System.nanoTime() > end) {
                break;
            }
            Thread.sleep(20);
        }
        assertEquals(8192, results[0], "reads succeed again after the reconnection");
        assertTrue(backend.connected());
        assertArrayEquals(data, back.toArray(JAVA_BYTE));
    }

    @Test
    void tcpExportWorks() throws Exception {
        int port = servers.nbdkitTcp("memory", "2M");
        backend = NbdBackend.open("nbd://127.0.0.1:" + port + "/");
        assertEquals(2 << 20, backend.size());
        byte[] data = pattern(4096, 8);
        backend.write(4096, MemorySegment.ofArray(data.clone()));
        byte[] back = new byte[4096];
        backend.read(4096, MemorySegment.ofArray(back));
        assertArrayEquals(data, back);
    }

    @Test
    void serverErrorsBecomeErrnosAndTheConnectionStays() throws Exception {
        Path socket = servers.nbdkit("e.sock", "--filter=error", "memory", "1M", "error-pread=EIO",
                "error-pread-rate=100%", "error-pwrite=ENOSPC", "error-pwrite-rate=100%", "error-trim=EPERM",
                "error-trim-rate=100%");
        backend = NbdBackend.open(NbdTestServers.uri(socket, ""));
        InboxEngine engine = new InboxEngine(4);
        AsyncIo io = engine.open(backend);
        NbdConnection before = backend.connection();
        io.read(0, 0, vector(arena.allocate(512)));
        io.write(1, 512, vector(arena.allocate(512)), false);
        int[] results = new int[4];
        assertEquals(2, engine.awaitCompletions(2, 5 * SECOND, results, null));
        assertEquals(-5, results[0], "EIO");
        assertEquals(-28, results[1], "ENOSPC");
        assertEquals(before, backend.connection(), "an error reply is not a broken connection");
        IOException e = assertThrows(IOException.class, () -> backend.read(0, arena.allocate(512)));
        assertTrue(e.getMessage().contains("EIO"), e.getMessage());
    }

    @Test
    void asyncReadsSplitAcrossPiecesLandInTheRightSegments() throws Exception {
        Path socket = nbdkitMemory("--filter=blocksize-policy", "blocksize-maximum=64K",
                "blocksize-error-policy=error");
        backend = NbdBackend.open(NbdTestServers.uri(socket, ""));
        byte[] data = pattern(200 * 1024, 11);
        backend.write(0, MemorySegment.ofArray(data.clone()));
        InboxEngine engine = new InboxEngine(2);
        AsyncIo io = engine.open(backend);
        // Segments of 5000, 100000 and the rest: the 64 KiB pieces cross segment boundaries both ways.
        MemorySegment a = arena.allocate(5000), b = arena.allocate(100_000), c = arena.allocate(data.length - 105_000);
        io.read(1, 0, vector(a, b, c));
        int[] results = new int[2];
        assertEquals(1, engine.awaitCompletions(1, 5 * SECOND, results, null));
        assertEquals(data.length, results[1]);
        byte[] back = new byte[data.length];
        MemorySegment.copy(a, JAVA_BYTE, 0, back, 0, 5000);
        MemorySegment.copy(b, JAVA_BYTE, 0, back, 5000, 100_000);
        MemorySegment.copy(c, JAVA_BYTE, 0, back, 105_000, (int) c.byteSize());
        assertArrayEquals(data, back);
    }

    @Test
    void anExportThatComesBackWithAnotherSizeStaysFailed() throws Exception {
        Path socket = servers.nbdkit("r.sock", "memory", "1M");
        backend = NbdBackend.open(NbdTestServers.uri(socket, ""));
        servers.killAll();
        Path logFile = dir.resolve("second.log");
        servers.nbdkit("r.sock", "--filter=log", "memory", "2M", "logfile=" + logFile);
        long end = System.nanoTime() + 10 * SECOND;
        while (log(logFile).stream().noneMatch(l -> l.contains(" Connect ")) && System.nanoTime() < end) {
            Thread.sleep(20); // until the backend has reconnected and seen the new size
        }
        assertTrue(log(logFile).stream().anyMatch(l -> l.contains(" Connect ")), "the backend tried the new server");
        assertEquals(1 << 20, backend.size());
        assertEquals(null, backend.connection(), "not connected to an export of another size");
        IOException e = assertThrows(IOException.class, () -> backend.read(0, arena.allocate(512)));
        assertTrue(e.getMessage().contains("ENOTCONN"), e.getMessage());
    }
}
