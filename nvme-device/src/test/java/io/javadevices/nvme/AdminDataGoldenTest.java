package io.javadevices.nvme;

import io.javadevices.nvme.backend.BlockBackend;
import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.nvme.driver.LinuxLikeDriver;
import io.javadevices.pci.testkit.TestHost;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Identify and log page data the controller returns, byte for byte, on one fixed configuration and after one
 * fixed I/O history, against goldens captured from the controller before its data structures were declared as
 * layouts: how a page is built may change, what the guest reads may not.
 *
 * <p>The history: namespace 1 (16 MiB RAM, advertised with a volatile write cache) gets an 8-block write and a
 * 4-block read, then a write and a read at LBA 7, which its backend fails, so the Error Information log holds two
 * entries (Write Fault and Unrecovered Read Error) and SMART counts the traffic. Namespace 2 is a 1 GiB null device
 * with 4 KiB LBAs. When a page differs on purpose, the test writes what it read to
 * {@code target/golden-actual/NAME.hex}; review it and copy it over the resource.
 */
class AdminDataGoldenTest {
    private static final long POISONED_OFFSET = 7 << 9;

    private static TestHost host;
    private static LinuxLikeDriver driver;

    /** Fails any transfer at LBA 7 of a 512-byte-LBA namespace; the first one opened claims a write cache. */
    private static final class PoisonedBackend implements BlockBackend {
        private final BlockBackend inner;
        private final boolean cache;

        PoisonedBackend(BlockBackend inner, boolean cache) {
            this.inner = inner;
            this.cache = cache;
        }

        @Override public long size() { return inner.size(); }
        @Override public void read(long offset, MemorySegment dst) throws IOException {
            if (offset == POISONED_OFFSET) {
                throw new IOException("poisoned block");
            }
            inner.read(offset, dst);
        }
        @Override public void write(long offset, MemorySegment src) throws IOException {
            if (offset == POISONED_OFFSET) {
                throw new IOException("poisoned block");
            }
            inner.write(offset, src);
        }
        @Override public void flush() throws IOException { inner.flush(); }
        @Override public boolean volatileWriteCache() { return cache; }
        @Override public void writeZeroes(long offset, long length) throws IOException { inner.writeZeroes(offset, length); }
        @Override public void deallocate(long offset, long length) throws IOException { inner.deallocate(offset, length); }
        @Override public boolean deallocatedReadsZero() { return inner.deallocatedReadsZero(); }
        @Override public boolean readsOnlyZeroes() { return inner.readsOnlyZeroes(); }
        @Override public String describe() { return inner.describe(); }
        @Override public void close() { inner.close(); }
    }

    @BeforeAll
    static void runTheFixedHistory() {
        host = TestHost.heap(64L << 20);
        Map<String, String> o = Map.of("queues", "4", "namespaces", "ram:16M,null:1G@4096", "mqes", "255",
                "serial", "GOLDEN42", "model", "Golden Model", "max-namespaces", "2");
        boolean[] first = {true};
        host.attach(ctx -> new NvmeController(NvmeOptions.parse(o), ctx, spec -> {
            BlockBackend b = new PoisonedBackend(spec.open(), first[0]);
            first[0] = false;
            return b;
        }));
        driver = new LinuxLikeDriver(host);
        driver.enable();
        driver.enableMsix(2);
        driver.setNumberOfQueues(1);
        HostQueue q = driver.createQueuePair(1, 16, 1);
        long page = host.allocatePages(1);
        assertTrue(q.execute(Command.write(1, 0, 8, page, 0)).ok());
        assertTrue(q.execute(Command.read(1, 0, 4, page, 0)).ok());
        Completion writeFault = q.execute(Command.write(1, 7, 1, page, 0));
        assertEquals(0x80, writeFault.sc(), writeFault.toString());
        Completion readError = q.execute(Command.read(1, 7, 1, page, 0));
        assertEquals(0x81, readError.sc(), readError.toString());
    }

    @AfterAll
    static void close() {
        if (host != null) {
            host.close();
        }
    }

    private static byte[] identify(int cns, int nsid) {
        return driver.identify(cns, nsid);
    }

    private static byte[] log(int lid, int nsid, int bytes) {
        Completion c = driver.admin(Command.getLogPage(lid, nsid, bytes, driver.dataPage()).cdw(10,
                lid | 1 << 15 | (bytes / 4 - 1) << 16)); // RAE: reading must not change what the next read sees
        assertTrue(c.ok(), c.toString());
        return driver.readData(bytes);
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({
            "identify-controller, 1, 0, 0",
            "identify-namespace-1, 0, 1, 0",
            "identify-namespace-2, 0, 2, 0",
            "identify-namespace-broadcast, 0, -1, 0",
            "identify-descriptors-1, 3, 1, 0",
            "log-error-information, 0, 0, 1",
            "log-smart, 0, -1, 2",
            "log-firmware-slot, 0, 0, 3",
            "log-commands-effects, 0, 0, 5",
    })
    void pageMatchesItsGolden(String name, int cns, int nsid, int lid) throws IOException {
        byte[] actual = switch (lid) {
            case 0 -> identify(cns, nsid);
            case 1 -> log(lid, nsid, 4096);
            case 5 -> log(lid, nsid, 4096);
            default -> log(lid, nsid, 512);
        };
        String got = hex(actual);
        String want;
        try (InputStream in = AdminDataGoldenTest.class.getResourceAsStream("golden/" + name + ".hex")) {
            want = in == null ? "(missing)" : new String(in.readAllBytes(), StandardCharsets.US_ASCII);
        }
        if (!want.equals(got)) {
            Path out = Path.of("target", "golden-actual", name + ".hex");
            Files.createDirectories(out.getParent());
            Files.writeString(out, got);
        }
        assertEquals("", differences(want, got), name + " differs from its golden (what was read: " + Path.of("target",
                "golden-actual", name + ".hex") + ")");
    }

    /** The lines of {@code got} that differ from {@code want} (golden line / actual line), at most eight. */
    private static String differences(String want, String got) {
        String[] w = want.split("\n"), g = got.split("\n");
        StringBuilder s = new StringBuilder();
        int shown = 0;
        for (int i = 0; i < Math.max(w.length, g.length) && shown < 8; i++) {
            String a = i < w.length ? w[i] : "(none)", b = i < g.length ? g[i] : "(none)";
            if (!a.equals(b)) {
                s.append("\n golden ").append(a).append("\n actual ").append(b);
                shown++;
            }
        }
        return s.toString();
    }

    /** 32 bytes a line, each line prefixed with its offset, so a diff names the byte that moved. */
    private static String hex(byte[] data) {
        StringBuilder s = new StringBuilder();
        HexFormat h = HexFormat.of();
        for (int at = 0; at < data.length; at += 32) {
            s.append(String.format("%04x: ", at)).append(h.formatHex(data, at, Math.min(at + 32, data.length))).append('\n');
        }
        return s.toString();
    }
}
