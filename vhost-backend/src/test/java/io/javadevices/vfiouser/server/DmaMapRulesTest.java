package io.javadevices.vfiouser.server;

import io.javadevices.pci.GuestMemory;
import io.javadevices.vfiouser.client.TestClient;
import io.javadevices.vfiouser.client.TestClient.Memfd;
import io.javadevices.vfiouser.sys.FileIdentity;
import io.javadevices.vfiouser.sys.LibC;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.channels.FileChannel;
import java.util.concurrent.atomic.AtomicReference;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.*;
import static io.javadevices.vfiouser.sys.Errno.EEXIST;
import static io.javadevices.vfiouser.sys.Errno.EINVAL;
import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

/** DMA_MAP's rules for re-maps and for which files may back guest RAM, and prompt deferred unmaps. */
class DmaMapRulesTest {
    static final long GPA = 0x1000_0000L;
    static final int SIZE = 1 << 20;

    @TempDir
    Path dir;
    private VfioUserServer server;

    @BeforeEach
    void start() throws Exception {
        server = Fixture.start(dir);
    }

    @AfterEach
    void stop() {
        server.close();
    }

    private static void assertError(TestClient.Reply r, int errno) {
        assertTrue(r.isError(), "expected an error reply");
        assertEquals(errno, r.error());
    }

    /** A re-map of the same range is a no-op only if it is the same mapping; anything else is EEXIST. */
    @Test
    void aReMapWithAnotherFileOffsetOrFlagsIsRefused() throws Exception {
        try (TestClient c = Fixture.client(server); Memfd a = new Memfd(2 * SIZE); Memfd b = new Memfd(SIZE)) {
            c.version();
            c.ok(CMD_DMA_MAP, TestClient.dmaMapPayload(GPA, SIZE, 0, DMA_FLAG_READ | DMA_FLAG_WRITE), a.fd);
            assertError(c.request(CMD_DMA_MAP, TestClient.dmaMapPayload(GPA, SIZE, 0, DMA_FLAG_READ | DMA_FLAG_WRITE), b.fd),
                    EEXIST);
            assertError(c.request(CMD_DMA_MAP, TestClient.dmaMapPayload(GPA, SIZE, 4096, DMA_FLAG_READ | DMA_FLAG_WRITE), a.fd),
                    EEXIST);
            assertError(c.request(CMD_DMA_MAP, TestClient.dmaMapPayload(GPA, SIZE, 0, DMA_FLAG_READ), a.fd), EEXIST);
            int dup = LibC.dup(a.fd); // another fd number for the same file: the identical re-map QEMU may send
            try {
                assertFalse(c.request(CMD_DMA_MAP, TestClient.dmaMapPayload(GPA, SIZE, 0, DMA_FLAG_READ | DMA_FLAG_WRITE), dup)
                        .isError(), "the same file, offset and flags again: accepted");
            } finally {
                LibC.closeQuietly(dup);
            }
            assertEquals(1L, server.resources().get("dma.maps"));
            // The mapping that stayed is still the first file at offset 0.
            a.memory.set(ValueLayout.JAVA_INT, 64, 0x5A5A);
            assertEquals(0x5A5A, server.guestMemoryForTest().readInt(GPA + 64));
        }
    }

    /**
     * Only tmpfs and hugetlbfs files can be guest RAM: a regular file on a disk filesystem is refused
     * with EINVAL (its page faults wait for the disk, or forever on FUSE/NFS), so is a non-file fd.
     */
    @Test
    void filesOutsideTmpfsAndHugetlbfsAreRefused() throws Throwable {
        Path target = Path.of("target").toAbsolutePath();
        Files.createDirectories(target);
        Path file = Files.createTempFile(target, "guest-ram", ".bin");
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.write(java.nio.ByteBuffer.allocate(SIZE), 0);
        }
        int fd = open(file);
        int eventfd = LibC.eventfd(0, LibC.EFD_CLOEXEC);
        try (TestClient c = Fixture.client(server); Memfd ok = new Memfd(SIZE)) {
            assumeFalse(FileIdentity.filesystemType(fd) == FileIdentity.TMPFS_MAGIC, "the build directory is on tmpfs");
            c.version();
            assertError(c.dmaMap(GPA, SIZE, 0, fd), EINVAL);
            assertError(c.dmaMap(GPA, 8, 0, eventfd), EINVAL);
            assertEquals(0L, server.resources().get("dma.maps"));
            assertFalse(c.dmaMap(GPA, SIZE, 0, ok.fd).isError(), "a memfd (tmpfs) is accepted");
        } finally {
            LibC.closeQuietly(fd);
            LibC.closeQuietly(eventfd);
            Files.deleteIfExists(file);
        }
    }

    /** open(2) O_RDWR|O_CLOEXEC, for a plain file fd to send (LibC has no open: the server never opens files). */
    private static int open(Path file) throws Throwable {
        Linker linker = Linker.nativeLinker();
        MethodHandle open = linker.downcallHandle(linker.defaultLookup().find("open").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT),
                Linker.Option.firstVariadicArg(2));
        try (Arena arena = Arena.ofConfined()) {
            int fd = (int) open.invokeExact(arena.allocateFrom(file.toString()), 02 | 02000000);
            assertTrue(fd >= 0, "open " + file);
            return fd;
        }
    }

    /**
     * A device thread blocked in a native call with a guest-memory segment defers the unmap's release;
     * once the call returns, the release completes by itself, without any further DMA_MAP.
     */
    @Test
    void aDeferredUnmapCompletesWithoutAFurtherMap() throws Exception {
        int blocking = LibC.eventfd(0, LibC.EFD_CLOEXEC); // read(2) blocks until someone writes it
        AtomicReference<Throwable> failed = new AtomicReference<>();
        try (TestClient c = Fixture.client(server); Memfd ram = new Memfd(SIZE)) {
            c.version();
            c.ok(CMD_DMA_MAP, TestClient.dmaMapPayload(GPA, SIZE, 0, DMA_FLAG_READ | DMA_FLAG_WRITE), ram.fd);
            GuestMemory memory = server.guestMemoryForTest();
            MemorySegment target = memory.slice(GPA, 8);
            Thread reader = Thread.ofPlatform().name("dma-reader").start(() -> {
                try {
                    LibC.read(blocking, target, 8); // "file I/O straight into guest memory"
                } catch (Throwable t) {
                    failed.set(t);
                }
            });
            awaitBlockedInKernel("dma-reader");
            c.ok(CMD_DMA_UNMAP, TestClient.le(24).putInt(24).putInt(0).putLong(GPA).putLong(SIZE).array());
            assertEquals(1L, server.resources().get("dma.deferred"), "the release waits for the native call");
            assertEquals(0L, server.resources().get("dma.maps"), "the mapping itself is gone");

            try (var value = Arena.ofConfined()) {
                MemorySegment one = value.allocate(8);
                one.set(ValueLayout.JAVA_LONG, 0, 1);
                LibC.write(blocking, one, 8);
            }
            reader.join(5000);
            assertNull(failed.get());
            long deadline = System.nanoTime() + 5_000_000_000L;
            while (server.resources().get("dma.deferred") != 0) {
                assertTrue(System.nanoTime() < deadline, "the deferred release never completed");
                Thread.sleep(1);
            }
        } finally {
            LibC.closeQuietly(blocking);
        }
    }

    /** Waits until the named thread sleeps in the kernel (state S in /proc/self/task/.../stat). */
    private static void awaitBlockedInKernel(String name) throws Exception {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (System.nanoTime() < deadline) {
            try (var tasks = Files.list(Path.of("/proc/self/task"))) {
                for (Path task : tasks.toList()) {
                    try {
                        if (Files.readString(task.resolve("comm")).strip().equals(name.substring(0, Math.min(15, name.length())))) {
                            String stat = Files.readString(task.resolve("stat"));
                            if (stat.substring(stat.lastIndexOf(')') + 2).startsWith("S")) {
                                return;
                            }
                        }
                    } catch (java.io.IOException gone) {
                        // the task ended meanwhile
                    }
                }
            }
            Thread.sleep(1);
        }
        fail("thread " + name + " never blocked");
    }
}
