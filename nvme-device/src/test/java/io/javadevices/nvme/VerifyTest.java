package io.javadevices.nvme;

import io.javadevices.nvme.backend.BlockBackend;
import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;

import static io.javadevices.nvme.WriteUncorrectableTest.verify;
import static org.junit.jupiter.api.Assertions.*;

/** Verify (0Ch): good blocks, marked blocks, a backend that fails reads, and the usual field checks. */
class VerifyTest {
    @Test
    void goodBlocksVerifyOnEveryBackend() throws IOException {
        Path dir = Files.createTempDirectory("verify");
        Path file = dir.resolve("ns.img");
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M,null:1G,file:" + file + ":8M")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            for (int nsid = 1; nsid <= 3; nsid++) {
                assertTrue(q.execute(verify(nsid, 0, 65536 / (nsid == 2 ? 1 : 4))).ok(), "namespace " + nsid);
                assertTrue(q.execute(verify(nsid, 7, 1)).ok(), "namespace " + nsid);
            }
            assertEquals(0, f.stat(NvmeStatistics.IO_BYTES_READ), "Verify transfers no data");
        } finally {
            Files.deleteIfExists(file);
            Files.deleteIfExists(dir);
        }
    }

    @Test
    void fuaCommitsTheRangeBeforeVerifyAndCompare() throws IOException {
        Path dir = Files.createTempDirectory("verify-fua");
        Path file = dir.resolve("ns.img");
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "file:" + file + ":8M")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            assertTrue(q.execute(Command.write(1, 0, 8, buf, 0)).ok());
            assertTrue(q.execute(verify(1, 0, 8)).ok());
            assertTrue(q.execute(CompareTest.compare(1, 0, 8, buf, 0)).ok());
            assertEquals(0, f.stat("ns1.syncs"), "without FUA nothing is synced");
            assertTrue(q.execute(verify(1, 0, 8).cdw(12, 7 | 1 << 30)).ok());
            assertEquals(1, f.stat("ns1.syncs"), "Verify with FUA");
            assertTrue(q.execute(CompareTest.compare(1, 0, 8, buf, 0).cdw(12, 7 | 1 << 30)).ok());
            assertEquals(2, f.stat("ns1.syncs"), "Compare with FUA");
        } finally {
            Files.deleteIfExists(file);
            Files.deleteIfExists(dir);
        }
    }

    @Test
    void aBackendReadFailureIsUnrecoveredReadError() {
        try (TestHostWithFailingReads t = new TestHostWithFailingReads()) {
            HostQueue q = t.driver.ioQueue(1);
            assertTrue(q.execute(verify(1, 0, 255)).ok(), "the 255 blocks before the failing one");
            Completion c = q.execute(verify(1, 0, 1024)); // 512 KiB: the failure is in the second 128 KiB chunk
            assertEquals(2, c.sct(), c.toString());
            assertEquals(0x81, c.sc());
            assertFalse(GuestBytes.dnr(c), "a backend error may be transient");
        }
    }

    @Test
    void invalidFields() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:1M")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            long blocks = (1 << 20) / 512;
            assertEquals(0x0B, q.execute(verify(2, 0, 1)).sc(), "wrong NSID");
            assertEquals(0x80, q.execute(verify(1, blocks - 1, 2)).sc(), "beyond the end");
            assertEquals(0x80, q.execute(verify(1, -1L, 1)).sc(), "SLBA 2^64-1");
            assertTrue(q.execute(verify(1, 0, (int) blocks)).ok(), "the whole namespace");
        }
    }

    /** A controller whose one RAM namespace fails every read that touches block 300. */
    private static final class TestHostWithFailingReads implements AutoCloseable {
        final io.javadevices.pci.testkit.TestHost host = io.javadevices.pci.testkit.TestHost.heap(16L << 20);
        final io.javadevices.nvme.driver.LinuxLikeDriver driver;

        TestHostWithFailingReads() {
            host.attach(ctx -> new NvmeController(NvmeOptions.parse(java.util.Map.of("queues", "1", "namespaces", "ram:1M")),
                    ctx, spec -> new FailingReads(spec.open())));
            driver = new io.javadevices.nvme.driver.LinuxLikeDriver(host);
            driver.bringUp(1, 16, true);
        }

        @Override
        public void close() {
            host.close();
        }
    }

    private record FailingReads(BlockBackend inner) implements BlockBackend {
        @Override public long size() { return inner.size(); }
        @Override public void read(long offset, MemorySegment dst) throws IOException {
            if (offset <= 300 * 512 && 300 * 512 < offset + dst.byteSize()) {
                throw new IOException("bad block 300");
            }
            inner.read(offset, dst);
        }
        @Override public void write(long offset, MemorySegment src) throws IOException { inner.write(offset, src); }
        @Override public void flush() throws IOException { inner.flush(); }
        @Override public void writeZeroes(long offset, long length) throws IOException { inner.writeZeroes(offset, length); }
        @Override public void deallocate(long offset, long length) throws IOException { inner.deallocate(offset, length); }
        @Override public boolean deallocatedReadsZero() { return inner.deallocatedReadsZero(); }
        @Override public String describe() { return inner.describe(); }
        @Override public void close() { inner.close(); }
    }
}
