package io.javadevices.nvme.nbd;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The NBD URI grammar (the nbd project's doc/uri.md). */
class NbdUriTest {

    @Test
    void tcpWithAndWithoutPort() {
        NbdUri u = NbdUri.parse("nbd://storage.example:10900/vol%2F1");
        assertEquals("storage.example", u.host());
        assertEquals(10900, u.port());
        assertEquals("vol/1", u.export(), "percent-decoded");
        assertNull(u.socket());
        assertEquals(NbdUri.DEFAULT_PORT, NbdUri.parse("nbd://h/x").port());
        assertEquals("", NbdUri.parse("nbd://h").export(), "no path: the default export");
        assertEquals("::1", NbdUri.parse("nbd://[::1]:10809/x").host());
        assertEquals("h", NbdUri.parse("nbd+tcp://h/x").host());
    }

    @Test
    void unixSocket() {
        NbdUri u = NbdUri.parse("nbd+unix:///disk?socket=/run/my%20nbd.sock");
        assertEquals(Path.of("/run/my nbd.sock"), u.socket());
        assertEquals("disk", u.export());
        assertEquals("", NbdUri.parse("nbd+unix://?socket=/s").export(), "empty export name");
        assertEquals("", NbdUri.parse("nbd+unix:///?socket=/s").export());
        assertEquals("d\u00e9j\u00e0", NbdUri.parse("nbd+unix:///d%C3%A9j%C3%A0?socket=/s").export(), "UTF-8");
        assertEquals("/s", NbdUri.parse("nbd+unix:///x?socket=/s").where());
    }

    @Test
    void refusedWithAReason() {
        assertRefused("nbds://h/x", "TLS");
        assertRefused("nbds+unix:///x?socket=/s", "TLS");
        assertRefused("nbd+vsock://3/x", "vsock");
        assertRefused("http://h/x", "unknown scheme");
        assertRefused("nbd:h/x", "not an NBD URI");
        assertRefused("nbd+unix://h/x?socket=/s", "no host");
        assertRefused("nbd://h/x#frag", "fragment");
        assertRefused("nbd://h/a%00b", "NUL");
        assertRefused("nbd://h:abc/x", "bad port");
        assertRefused("nbd://h/" + "x".repeat(4097), "4096");
    }

    private static void assertRefused(String uri, String reason) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> NbdUri.parse(uri));
        assertTrue(e.getMessage().contains(reason), uri + ": " + e.getMessage());
    }
}
