package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.pci.GuestMemoryException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code nbd://} and {@code nbd+unix://} namespaces: the option grammar, and a namespace on a real {@code nbdkit}
 * export driven by the Linux-like driver (size from the export, data, Write Zeroes and deallocate reading zeroes).
 */
class NbdNamespaceTest {
    @TempDir
    Path dir;
    private Process server;

    @AfterEach
    void stop() throws InterruptedException {
        if (server != null) {
            server.destroyForcibly();
            server.waitFor(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void nbdUrisAreNamespacesWithTheirSizeFromTheExport() {
        var specs = NvmeOptions.parseNamespaces("nbd+unix:///disk%20one?socket=/run/s.sock@4096,nbd://host:10810/x,"
                + "nbd://[::1]/,nbd+unix://?socket=/s,ram:1M");
        assertEquals(List.of("nbd", "nbd", "nbd", "nbd", "ram"), specs.stream().map(NvmeOptions.NamespaceSpec::kind).toList());
        assertEquals("nbd+unix:///disk%20one?socket=/run/s.sock", specs.get(0).path());
        assertEquals(4096, specs.get(0).lbaSize());
        assertEquals(0, specs.get(0).size(), "the export gives the size");
        assertEquals("nbd://host:10810/x", specs.get(1).path());
        assertEquals(512, specs.get(1).lbaSize());
        assertEquals("nbd://[::1]/", specs.get(2).path());
        assertEquals("nbd+unix://?socket=/s", specs.get(3).path());
    }

    @Test
    void badNbdNamespacesAreRefusedWithTheReason() {
        assertRefused("nbd+unix:///x?socket=/s:1G", "takes its size from the export");
        assertRefused("nbd://h/x:64M@4096", "takes its size from the export");
        assertRefused("nbd+unix:///x?socket=/s@1024", "@512 or @4096");
        assertRefused("nbds://h/x", "TLS");
        assertRefused("nbd+vsock://2:10809/x", "vsock");
        assertRefused("nbd+unix:///x", "socket=PATH");
        assertRefused("nbd://h:0/x", "port");
        assertRefused("nbd://h:99999/x", "port");
        assertRefused("nbd:///x", "needs a host");
        assertRefused("nbd://h/x?socket=/s", "no query");
        assertRefused("nbd://h/%zz", "percent escape");
        assertRefused("nbd://h/%2", "truncated");
        assertRefused("nbd+unix:///x?socket=/s&tls=on", "unknown query parameter");
    }

    private static void assertRefused(String namespaces, String reason) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> NvmeOptions.parseNamespaces(namespaces), namespaces);
        assertTrue(e.getMessage().contains(reason), namespaces + ": " + e.getMessage());
    }

    @Test
    void helpDescribesNbdNamespaces() {
        assertTrue(NvmeOptions.HELP.contains("nbd+unix:///EXPORT?socket=PATH"));
        assertTrue(NvmeOptions.HELP.contains("nbd://HOST[:PORT]/EXPORT"));
    }

    private Path nbdkit(String... args) throws IOException, InterruptedException {
        io.javadevices.nvme.nbd.NbdTestServers.require("nbdkit");
        Path socket = dir.resolve("s.sock");
        List<String> command = new java.util.ArrayList<>(List.of("nbdkit", "--unix", socket.toString(), "--foreground"));
        command.addAll(List.of(args));
        server = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(dir.resolve("out").toFile()).start();
        io.javadevices.nvme.nbd.NbdTestServers.awaitListening(server, socket);
        return socket;
    }

    @Test
    void exportSizeMustBeAWholeNumberOfLbas() throws Exception {
        Path socket = nbdkit("memory", "1536"); // 3 × 512 bytes: fine at 512, not at 4096
        var spec = NvmeOptions.parseNamespaces("nbd+unix:///?socket=" + socket + "@4096").get(0);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, spec::open);
        assertTrue(e.getMessage().contains("not a multiple of the LBA size 4096"), e.getMessage());
        try (var backend = NvmeOptions.parseNamespaces("nbd+unix:///?socket=" + socket).get(0).open()) {
            assertEquals(1536, backend.size());
        }
    }

    @Test
    void exportOfAnOddSizeIsRefused() throws Exception {
        Path socket = nbdkit("memory", "1000");
        var spec = NvmeOptions.parseNamespaces("nbd+unix:///?socket=" + socket).get(0);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, spec::open);
        assertTrue(e.getMessage().contains("positive multiple of 512"), e.getMessage());
    }

    @Test
    void driverReadsWritesZeroesAndDeallocatesAnNbdNamespace() throws Exception {
        Path socket = nbdkit("memory", "8M");
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "nbd+unix:///?socket=" + socket)) {
            f.driver.bringUp(1, 32, true);
            byte[] ns = f.driver.identify(0x00, 1);
            assertEquals((8 << 20) / 512, ByteBuffer.wrap(ns, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong(), "NSZE");
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(2);
            byte[] data = new byte[8192];
            new Random(5).nextBytes(data);
            f.host.memory().write(buf, data, 0, data.length);
            assertTrue(q.execute(Command.write(1, 64, 16, buf, buf + 4096)).ok());
            assertTrue(q.execute(Command.flush(1)).ok());
            assertTrue(q.execute(Command.of(0x08).nsid(1).slba(66).cdw(12, 1)).ok()); // Write Zeroes, 2 blocks
            long back = f.host.allocatePages(2);
            assertTrue(q.execute(Command.read(1, 64, 16, back, back + 4096)).ok());
            byte[] want = data.clone();
            java.util.Arrays.fill(want, 1024, 2048, (byte) 0);
            assertArrayEquals(want, read(f, back, 8192));
            long ranges = f.host.allocatePages(1);
            f.host.memory().writeInt(ranges + 4, 8);
            f.host.memory().writeLong(ranges + 8, 72);
            assertTrue(q.execute(Command.of(0x09).nsid(1).prp1(ranges).cdw(10, 0).cdw(11, 4)).ok()); // deallocate
            assertTrue(q.execute(Command.read(1, 64, 16, back, back + 4096)).ok());
            java.util.Arrays.fill(want, 4096, 8192, (byte) 0);
            assertArrayEquals(want, read(f, back, 8192), "deallocated blocks read zeroes");
        }
    }

    @Test
    void qcow2OnQemuNbdHoldsWhatTheDriverWroteAsQemuImgSeesIt() throws Exception {
        io.javadevices.nvme.nbd.NbdTestServers.require("qemu-nbd");
        io.javadevices.nvme.nbd.NbdTestServers.require("qemu-img");
        Path image = dir.resolve("disk.qcow2");
        assertEquals(0, new ProcessBuilder("qemu-img", "create", "-q", "-f", "qcow2", image.toString(), "16M")
                .inheritIO().start().waitFor());
        Path socket = dir.resolve("q.sock");
        server = new ProcessBuilder("qemu-nbd", "--socket=" + socket, "--format=qcow2", "--persistent", "--shared=4",
                "--discard=unmap", image.toString()).redirectErrorStream(true).redirectOutput(dir.resolve("out").toFile())
                .start();
        io.javadevices.nvme.nbd.NbdTestServers.awaitListening(server, socket);
        byte[] expected = new byte[16 << 20];
        Random random = new Random(11);
        try (Fixture f = Fixture.of("queues", "2", "namespaces", "nbd+unix:///?socket=" + socket + "@4096")) {
            f.driver.bringUp(2, 32, true);
            long buf = f.host.allocatePages(2);
            byte[] data = new byte[8192];
            for (int i = 0; i < 64; i++) {
                HostQueue q = f.driver.ioQueue(1 + i % 2);
                int lba = random.nextInt(4095);
                random.nextBytes(data);
                f.host.memory().write(buf, data, 0, data.length);
                assertTrue(q.execute(Command.write(1, lba, 2, buf, buf + 4096)).ok());
                System.arraycopy(data, 0, expected, lba * 4096, data.length);
            }
            assertTrue(f.driver.ioQueue(1).execute(Command.flush(1)).ok());
        }
        server.destroy(); // SIGTERM: qemu-nbd closes the image cleanly
        assertTrue(server.waitFor(10, TimeUnit.SECONDS));
        server = null;
        Path raw = dir.resolve("expected.raw");
        Files.write(raw, expected);
        Process compare = new ProcessBuilder("qemu-img", "compare", "-f", "qcow2", "-F", "raw", image.toString(),
                raw.toString()).redirectErrorStream(true).start();
        String out = new String(compare.getInputStream().readAllBytes());
        assertEquals(0, compare.waitFor(), "qemu-img compare: " + out);
    }

    private static byte[] read(Fixture f, long address, int length) throws GuestMemoryException {
        byte[] out = new byte[length];
        f.host.memory().read(address, out, 0, length);
        return out;
    }
}
