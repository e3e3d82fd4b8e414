package io.javadevices.vfiouser.server;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.javadevices.fuzzing.KnownIssues;
import io.javadevices.vfiouser.client.TestClient;
import io.javadevices.vfiouser.client.TestClient.Memfd;
import io.javadevices.vfiouser.client.TestClient.Reply;
import io.javadevices.vfiouser.sys.LibC;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.logging.Level;
import java.util.logging.Logger;

import static io.javadevices.pci.sample.DmaCopyDevice.*;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.*;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Coverage-guided fuzzing (Jazzer) of the vfio-user message path with descriptors attached. Against a real
 * server on a temp socket (the DmaCopyDevice sample behind it), one client session per input sends
 * fuzzer-built DMA_MAP / DMA_UNMAP / SET_IRQS / device-DMA / raw messages, with fds of every kind attached:
 * eventfds, memfds (also too small, or shrunk with ftruncate after DMA_MAP), pipes (either end, or a full
 * blocking write end), a socket, a regular file, a directory.
 *
 * <p>Invariants: every message gets its reply (no hang, no disconnect); DMA_MAP refuses fds that cannot be
 * guest RAM (pipes, sockets, eventfds, a directory, a file too short for the range); SET_IRQS refuses fds that
 * are not eventfds; a device DMA always ends (done or error); no thread dies of an uncaught throwable. After
 * the session: the server is serving with no DMA mapping and no client eventfd left, a correct client gets
 * VERSION, device info, its config space and a working DMA copy, and this process has no more eventfds,
 * memfds, pipes, sockets or temp files open than before the input.
 */
class FdMessageFuzzTest {
    private static final long RAM_SIZE = 64 << 10;
    private static final long GPA = 0x100_0000;
    private static final int SLOTS = 4;
    private static final long TIMEOUT_MILLIS = 2000;
    private static final Queue<String> UNCAUGHT = new ConcurrentLinkedQueue<>();

    @TempDir
    static Path dir;
    private static VfioUserServer server;
    private static int servers;
    private static boolean failed;
    private static Thread.UncaughtExceptionHandler savedHandler;
    /** The server's loggers (held: JUL keeps loggers weakly); quiet while fuzzing, one session per input. */
    private static final Logger SERVER_LOG = Logger.getLogger("io.javadevices.vfiouser");
    private static Level savedLevel;

    private enum Kind { NONE, EVENTFD, MEMFD, SMALL_MEMFD, REGULAR_FILE, PIPE_READ, PIPE_WRITE, FULL_PIPE, SOCKET, DIRECTORY }

    @BeforeAll
    static void startServer() throws Exception {
        savedHandler = Thread.getDefaultUncaughtExceptionHandler();
        Thread.setDefaultUncaughtExceptionHandler((t, e) -> UNCAUGHT.add(t.getName() + ": " + e));
        savedLevel = SERVER_LOG.getLevel();
        SERVER_LOG.setLevel(Level.SEVERE); // connect/disconnect lines and per-message warnings: thousands per second
        restartServer();
    }

    @AfterAll
    static void stopServer() {
        server.close();
        Thread.setDefaultUncaughtExceptionHandler(savedHandler);
        SERVER_LOG.setLevel(savedLevel);
        if (!KnownIssues.hits().isEmpty()) {
            System.out.println("[fuzz] vfio-user fds: known issues tolerated " + KnownIssues.hits());
        }
    }

    /** A new server (the first, or after a tolerated known issue left the device unusable). */
    private static void restartServer() throws Exception {
        if (server != null) {
            server.close();
        }
        server = Fixture.start(Files.createDirectories(dir.resolve("s" + servers++)), Limits.defaults());
        assertServesCorrectClient(); // also opens whatever the server opens lazily, before fds are counted
    }

    @FuzzTest(maxDuration = "20s")
    void messagesWithFds(FuzzedDataProvider data) throws Exception {
        if (failed) {
            // The previous input failed and may have left the device unusable: do not blame this one for it.
            UNCAUGHT.clear();
            restartServer();
            failed = false;
        }
        failed = true;
        checkOneSession(data);
        failed = false;
    }

    private static void checkOneSession(FuzzedDataProvider data) throws Exception {
        Map<Integer, String> before = HostileFds.sessionKinds(dir);
        boolean broken;
        try (Session session = new Session(data)) {
            session.run();
            broken = session.deviceBroken;
        }
        Fixture.idle(server);
        String uncaught;
        while ((uncaught = UNCAUGHT.poll()) != null) {
            if (!uncaught.contains("InternalError")) {
                throw new AssertionError("uncaught in the server: " + uncaught);
            }
            KnownIssues.hit(KnownIssues.TRUNCATED_MEMFD, uncaught);
            broken = true;
        }
        if (broken) {
            restartServer(); // a tolerated known issue killed the device worker: go on with a new server
            return;
        }
        assertTrue(server.isServing(), "server stopped serving");
        assertEquals(0L, server.resources().get("dma.maps"), "DMA mappings left after disconnect");
        assertEquals(0L, server.resources().get("irq.fds"), "client eventfds left after disconnect");
        assertServesCorrectClient();
        Fixture.idle(server);
        Map<Integer, String> leaked = new HashMap<>(HostileFds.sessionKinds(dir));
        leaked.entrySet().removeIf(e -> e.getValue().equals(before.get(e.getKey())));
        assertTrue(leaked.isEmpty(), "descriptors left open after the session: " + leaked);
    }

    /** VERSION, device info, config space vendor id, and a DMA copy through fresh guest RAM. */
    private static void assertServesCorrectClient() throws Exception {
        try (TestClient c = Fixture.client(server).timeout(TIMEOUT_MILLIS); Memfd ram = new Memfd(RAM_SIZE)) {
            c.version();
            c.deviceInfo();
            assertEquals(0x4E58, c.readLong(REGION_CONFIG, 0, 2), "vendor id");
            assertTrue(!c.dmaMap(GPA, RAM_SIZE, 0, ram.fd).isError(), "DMA_MAP of a memfd");
            c.writeLong(REGION_CONFIG, 0x04, 2, 0x0006); // memory + bus master
            for (int i = 0; i < 64; i++) {
                ram.memory.set(JAVA_BYTE, i, (byte) (i * 3 + 1));
            }
            c.writeLong(0, REG_SRC, 8, GPA);
            c.writeLong(0, REG_DST, 8, GPA + 4096);
            c.writeLong(0, REG_LEN, 4, 64);
            c.writeLong(0, REG_DOORBELL, 4, 1);
            assertEquals(STATUS_DONE, awaitDmaEnd(c), "DMA copy status");
            assertEquals(-1, ram.memory.asSlice(4096, 64).mismatch(ram.memory.asSlice(0, 64)), "copied data");
        }
    }

    /** Polls STATUS until the device is no longer busy (or the timeout); returns the last status. */
    private static long awaitDmaEnd(TestClient c) throws IOException {
        long deadline = System.nanoTime() + TIMEOUT_MILLIS * 1_000_000;
        long status;
        do {
            status = c.readLong(0, REG_STATUS, 4);
        } while (status == STATUS_BUSY && System.nanoTime() < deadline);
        return status;
    }

    /** One input's client session; closing it drains the pipes (unblocking a stuck writer) and closes every fd. */
    private static final class Session implements AutoCloseable {
        private record Mapping(int fd, long address, long size) {
        }

        private final FuzzedDataProvider data;
        private final TestClient client;
        private final List<Integer> owned = new ArrayList<>();
        private final List<Integer> pipeReadEnds = new ArrayList<>();
        private final List<Path> files = new ArrayList<>();
        private final List<Mapping> mappings = new ArrayList<>();
        private String acceptedNonEventfd; // what SET_IRQS took as an eventfd although it is not one
        private boolean truncated;
        boolean deviceBroken;

        Session(FuzzedDataProvider data) throws IOException {
            this.data = data;
            this.client = Fixture.client(server).timeout(TIMEOUT_MILLIS);
        }

        void run() throws Exception {
            if (call(CMD_VERSION, versionPayload()) == null) {
                return;
            }
            int steps = data.consumeInt(1, 12);
            for (int i = 0; i < steps && data.remainingBytes() > 0; i++) {
                if (!step()) {
                    return; // a tolerated known issue ended the session
                }
            }
        }

        private boolean step() throws Exception {
            return switch (data.consumeInt(0, 6)) {
                case 0 -> dmaMap();
                case 1 -> dmaUnmap();
                case 2 -> assignIrqFds();
                case 3 -> triggerIrqs();
                case 4 -> deviceDma();
                case 5 -> shrinkMappedFile();
                default -> rawMessage();
            };
        }

        private boolean dmaMap() throws Exception {
            Kind kind = data.pickValue(Kind.values());
            long address = data.consumeInt(0, 7) == 0 ? data.consumeLong() : GPA + RAM_SIZE * data.consumeInt(0, SLOTS - 1);
            long size = data.consumeInt(0, 7) == 0 ? data.consumeLong() : 4096L * data.consumeInt(1, (int) (RAM_SIZE / 4096));
            long offset = switch (data.consumeInt(0, 3)) {
                case 0 -> data.consumeLong();
                case 1 -> 4096;
                default -> 0;
            };
            int flags = data.consumeInt(0, 7) == 0 ? data.consumeInt() : data.consumeInt(1, 3);
            int fd = open(kind);
            Reply r = call(CMD_DMA_MAP, TestClient.dmaMapPayload(address, size, offset, flags), fd < 0 ? new int[0] : new int[] {fd});
            if (r == null) {
                return false;
            }
            if (!r.isError()) {
                assertTrue(kind == Kind.NONE || kind == Kind.MEMFD || kind == Kind.SMALL_MEMFD || kind == Kind.REGULAR_FILE,
                        "DMA_MAP accepted a " + kind);
                if (kind != Kind.NONE) {
                    long fileSize = kind == Kind.SMALL_MEMFD ? 4096 : RAM_SIZE;
                    assertTrue(offset >= 0 && size > 0 && offset + size <= fileSize,
                            "DMA_MAP accepted " + size + " bytes at offset " + offset + " of a " + fileSize + "-byte " + kind);
                    mappings.add(new Mapping(fd, address, size));
                }
            }
            return true;
        }

        private boolean dmaUnmap() throws Exception {
            boolean all = data.consumeInt(0, 7) == 0;
            long address, size;
            if (!mappings.isEmpty() && data.consumeBoolean()) {
                Mapping m = data.pickValue(mappings);
                address = m.address;
                size = m.size;
            } else {
                address = GPA + RAM_SIZE * data.consumeInt(0, SLOTS);
                size = 4096L * data.consumeInt(0, 17);
            }
            byte[] payload = TestClient.le(24).putInt(24).putInt(all ? DMA_UNMAP_FLAG_ALL : 0).putLong(address).putLong(size).array();
            return call(CMD_DMA_UNMAP, payload) != null;
        }

        private boolean assignIrqFds() throws Exception {
            int index = data.consumeInt(0, 5) == 0 ? data.consumeInt(0, 5) : data.pickValue(new int[] {IRQ_MSIX, IRQ_INTX, IRQ_ERR});
            int action = index == IRQ_INTX && data.consumeBoolean() ? IRQ_SET_ACTION_UNMASK : IRQ_SET_ACTION_TRIGGER;
            int start = data.consumeInt(0, 2);
            int count = data.consumeInt(0, 3);
            int[] fds = new int[data.consumeBoolean() ? count : data.consumeInt(0, 3)];
            Kind[] kinds = new Kind[fds.length];
            for (int i = 0; i < fds.length; i++) {
                kinds[i] = data.pickValue(Kind.values());
                fds[i] = open(kinds[i] == Kind.NONE ? Kind.EVENTFD : kinds[i]);
                kinds[i] = kinds[i] == Kind.NONE ? Kind.EVENTFD : kinds[i];
            }
            byte[] payload = TestClient.le(20).putInt(20).putInt(IRQ_SET_DATA_EVENTFD | action).putInt(index)
                    .putInt(start).putInt(count).array();
            Reply r = call(CMD_DEVICE_SET_IRQS, payload, fds);
            if (r == null) {
                return false;
            }
            if (!r.isError()) {
                for (Kind k : kinds) {
                    if (k != Kind.EVENTFD) {
                        acceptedNonEventfd = k.toString();
                        KnownIssues.hit(KnownIssues.NOT_AN_EVENTFD, "SET_IRQS index " + index + " accepted a " + k);
                    }
                }
            }
            return true;
        }

        private boolean triggerIrqs() throws Exception {
            int index = data.pickValue(new int[] {IRQ_MSIX, IRQ_INTX, IRQ_ERR, data.consumeInt(0, 5)});
            int start = data.consumeInt(0, 2);
            int count = data.consumeInt(0, 3);
            boolean bools = data.consumeBoolean();
            byte[] payload;
            if (bools) {
                payload = TestClient.le(20 + count).putInt(20 + count).putInt(IRQ_SET_DATA_BOOL | IRQ_SET_ACTION_TRIGGER)
                        .putInt(index).putInt(start).putInt(count).put(data.consumeBytes(count)).array();
            } else {
                payload = TestClient.le(20).putInt(20).putInt(IRQ_SET_DATA_NONE | IRQ_SET_ACTION_TRIGGER)
                        .putInt(index).putInt(start).putInt(count).array();
            }
            return call(CMD_DEVICE_SET_IRQS, payload) != null;
        }

        /** Programs a copy (addresses in or around the mappings) and waits until the device is done with it. */
        private boolean deviceDma() throws Exception {
            long src = dmaAddress(), dst = dmaAddress();
            int length = data.consumeBoolean() ? data.consumeInt(0, 8192) : data.consumeInt(0, MAX_LEN + 1);
            boolean busMaster = data.consumeInt(0, 7) != 0;
            for (long[] write : new long[][] {{REGION_CONFIG, 0x04, 2, busMaster ? 0x6 : 0x2}, {0, REG_SRC, 8, src},
                    {0, REG_DST, 8, dst}, {0, REG_LEN, 4, length}, {0, REG_DOORBELL, 4, 1}}) {
                Reply r = call(CMD_REGION_WRITE, TestClient.rwPayload((int) write[0], write[1], (int) write[2],
                        TestClient.bytes(write[3], (int) write[2])));
                if (r == null) {
                    return false;
                }
                assertTrue(!r.isError(), "REGION_WRITE of a device register failed: errno " + r.error());
            }
            long status = awaitDmaEnd(client);
            if (status != STATUS_BUSY) {
                return true;
            }
            String what = "device DMA of " + length + " bytes " + Long.toHexString(src) + " -> " + Long.toHexString(dst)
                    + " never ended";
            if (truncated) {
                deviceBroken = true;
                KnownIssues.hit(KnownIssues.TRUNCATED_MEMFD, what + " after a mapped file was shrunk");
                return false;
            }
            if (acceptedNonEventfd != null) {
                KnownIssues.hit(KnownIssues.NOT_AN_EVENTFD, what + " (interrupt written to a " + acceptedNonEventfd + ")");
                return false;
            }
            throw new AssertionError(what);
        }

        private long dmaAddress() {
            if (!mappings.isEmpty() && data.consumeInt(0, 3) != 0) {
                Mapping m = data.pickValue(mappings);
                return m.address + data.consumeLong(0, m.size);
            }
            return data.consumeBoolean() ? GPA + data.consumeLong(0, RAM_SIZE * SLOTS) : data.consumeLong();
        }

        /** Shrinks a file that backs a DMA mapping (the client still holds it): the classic SIGBUS. */
        private boolean shrinkMappedFile() throws IOException {
            if (mappings.isEmpty()) {
                return true;
            }
            Mapping m = data.pickValue(mappings);
            LibC.ftruncate(m.fd, data.consumeLong(0, m.size));
            truncated = true;
            return true;
        }

        private boolean rawMessage() throws Exception {
            int command = data.consumeInt(0, 9) == 0 ? data.consumeInt(0, 0xFFFF) : data.consumeInt(1, 15);
            byte[] payload = data.consumeBytes(data.consumeInt(0, 96));
            Kind[] kinds = new Kind[data.consumeInt(0, 3)];
            int[] fds = new int[kinds.length];
            for (int i = 0; i < fds.length; i++) {
                kinds[i] = data.pickValue(Kind.values());
                fds[i] = open(kinds[i] == Kind.NONE ? Kind.EVENTFD : kinds[i]);
            }
            Reply r = call(command, payload, fds);
            if (r == null) {
                return false;
            }
            if (!r.isError() && fds.length > 0) {
                assertTrue(command == CMD_DMA_MAP || command == CMD_DEVICE_SET_IRQS,
                        commandName(command) + " accepted " + fds.length + " fds");
                if (command == CMD_DMA_MAP) {
                    assertTrue(fds.length == 1 && (kinds[0] == Kind.MEMFD || kinds[0] == Kind.SMALL_MEMFD
                            || kinds[0] == Kind.REGULAR_FILE), "raw DMA_MAP accepted " + List.of(kinds));
                }
                if (command == CMD_DEVICE_SET_IRQS) {
                    for (Kind k : kinds) {
                        if (k != Kind.EVENTFD && k != Kind.NONE) {
                            acceptedNonEventfd = k.toString();
                            KnownIssues.hit(KnownIssues.NOT_AN_EVENTFD, "raw SET_IRQS accepted a " + k);
                        }
                    }
                }
            }
            return true;
        }

        private byte[] versionPayload() {
            byte[] json = TestClient.QEMU_CAPS.getBytes(java.nio.charset.StandardCharsets.UTF_8);
            return TestClient.le(4 + json.length + 1).putShort((short) 0).putShort((short) 0).put(json).put((byte) 0).array();
        }

        /**
         * Sends a command and returns its reply. A missing reply is a failure, except after SET_IRQS took a
         * non-eventfd (a tolerated known issue: the server may block writing to it), when it returns null.
         */
        private Reply call(int command, byte[] payload, int... fds) throws IOException {
            try {
                return client.request(command, payload, fds);
            } catch (IOException e) {
                if (acceptedNonEventfd != null) {
                    KnownIssues.hit(KnownIssues.NOT_AN_EVENTFD, commandName(command) + " not answered (" + e.getMessage()
                            + ") after SET_IRQS took a " + acceptedNonEventfd);
                    return null;
                }
                throw new AssertionError(commandName(command) + " with " + fds.length + " fds: " + e.getMessage(), e);
            }
        }

        /** Opens a descriptor of {@code kind} (-1 for NONE); the session closes it (and its other end). */
        private int open(Kind kind) throws IOException {
            int fd;
            switch (kind) {
                case NONE -> {
                    return -1;
                }
                case EVENTFD -> fd = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
                case MEMFD, SMALL_MEMFD -> {
                    fd = LibC.memfdCreate("fuzz-guest-ram", LibC.MFD_CLOEXEC);
                    LibC.ftruncate(fd, kind == Kind.MEMFD ? RAM_SIZE : 4096);
                }
                case REGULAR_FILE -> {
                    Path file = Files.createTempFile(dir, "guest-ram", ".img");
                    files.add(file);
                    fd = HostileFds.openFile(file);
                    LibC.ftruncate(fd, RAM_SIZE);
                }
                case PIPE_READ, PIPE_WRITE, FULL_PIPE -> {
                    int[] p = kind == Kind.FULL_PIPE ? HostileFds.fullBlockingPipe() : HostileFds.pipe();
                    pipeReadEnds.add(p[0]);
                    owned.add(kind == Kind.PIPE_READ ? p[1] : p[0]);
                    fd = kind == Kind.PIPE_READ ? p[0] : p[1];
                }
                case SOCKET -> {
                    int[] s = HostileFds.socketPair();
                    owned.add(s[1]);
                    fd = s[0];
                }
                default -> fd = HostileFds.openDirectory(dir);
            }
            owned.add(fd);
            return fd;
        }

        @Override
        public void close() throws IOException {
            for (int readEnd : pipeReadEnds) {
                HostileFds.drain(readEnd); // a server thread blocked on a full pipe can go on
            }
            client.close();
            try {
                Fixture.idle(server);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (IllegalStateException stuck) {
                for (int readEnd : pipeReadEnds) {
                    HostileFds.drain(readEnd);
                }
            }
            for (int fd : owned) {
                LibC.closeQuietly(fd);
            }
            for (Path file : files) {
                Files.deleteIfExists(file);
            }
        }
    }
}
