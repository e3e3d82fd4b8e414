package io.javadevices.nvme.pool;

import io.javadevices.nvme.model.NamespaceIds;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class PoolManifestTest {
    @TempDir
    Path dir;

    private static void same(PoolManifest.Entry a, PoolManifest.Entry b) {
        assertEquals(a.nsid(), b.nsid());
        assertEquals(a.bytes(), b.bytes());
        assertEquals(a.lbaSize(), b.lbaSize());
        assertEquals(a.attached(), b.attached());
        assertEquals(a.nmic(), b.nmic());
        assertEquals(a.owned(), b.owned());
        assertEquals(a.path(), b.path());
        assertEquals(a.ids().toHex(), b.ids().toHex());
    }

    @Test
    void roundTripKeepsEveryFieldAndOddPaths() throws IOException {
        PoolManifest m = new PoolManifest(dir);
        List<PoolManifest.Entry> entries = List.of(
                new PoolManifest.Entry(1, 8L << 20, 512, true, 0, false, NamespaceIds.derived("SN", 1), "/var/images/my disk:1.img"),
                new PoolManifest.Entry(7, 1L << 40, 4096, false, 1, true, NamespaceIds.random(), "ns7-0123abcd.img"));
        m.write(entries);
        List<PoolManifest.Entry> back = m.read();
        assertEquals(2, back.size());
        for (int i = 0; i < 2; i++) {
            same(entries.get(i), back.get(i));
        }
        m.write(List.of());
        assertEquals(List.of(), m.read(), "an empty pool is a valid manifest");
        assertFalse(Files.exists(dir.resolve(PoolManifest.FILE + ".tmp")), "the temporary file was renamed");
    }

    @Test
    void duplicateNsidsAreRefused() throws IOException {
        PoolManifest m = new PoolManifest(dir);
        NamespaceIds ids = NamespaceIds.random();
        m.write(List.of(new PoolManifest.Entry(2, 4096, 512, true, 0, true, ids, "a.img"),
                new PoolManifest.Entry(2, 4096, 512, true, 0, true, ids, "b.img")));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, m::read);
        assertTrue(e.getMessage().contains("NSID 2 twice"), e.getMessage());
    }

    @Test
    void anOwnedFileOutsideTheDirectoryIsRefused() throws IOException {
        PoolManifest m = new PoolManifest(dir);
        m.write(List.of(new PoolManifest.Entry(1, 4096, 512, true, 0, true, NamespaceIds.random(), "../victim.img")));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, m::read);
        assertTrue(e.getMessage().contains("plain name"), e.getMessage());
        m.write(List.of(new PoolManifest.Entry(1, 4096, 512, true, 0, false, NamespaceIds.random(), "/srv/disk.img")));
        assertEquals("/srv/disk.img", m.read().getFirst().path(), "a command-line file anywhere is fine: never deleted");
    }

    @Test
    void randomIdentifiersAreVersion4UuidsWithTheDeviceOui() {
        NamespaceIds a = NamespaceIds.random(), b = NamespaceIds.random();
        assertNotEquals(a.toHex(), b.toHex());
        assertEquals('4', a.uuidText().charAt(14), a.uuidText());
        assertEquals(0x4A, a.eui64()[0] & 0xFF);
        assertArrayEquals(a.eui64(), java.util.Arrays.copyOfRange(a.nguid(), 8, 16), "NGUID ends with the EUI-64");
        assertEquals(a.toHex(), NamespaceIds.fromHex(a.toHex()).toHex());
        assertThrows(IllegalArgumentException.class, () -> NamespaceIds.fromHex("00:11"));
    }
}
