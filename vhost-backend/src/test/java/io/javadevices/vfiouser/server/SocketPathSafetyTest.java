package io.javadevices.vfiouser.server;

import io.javadevices.pci.sample.DmaCopyDevice;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

import static java.net.StandardProtocolFamily.UNIX;
import static org.junit.jupiter.api.Assertions.*;

/**
 * What the server does with whatever already sits at its socket path: only a stale socket (one that
 * refuses connections) is replaced; a symlink (to anything), a regular file, a directory or a live
 * socket make start() fail and are left exactly as they were.
 */
class SocketPathSafetyTest {
    @TempDir
    Path dir;

    private static VfioUserServer server(Path path, int mode) {
        return VfioUserServer.builder().socket(path).socketMode(mode).device(DmaCopyDevice::new).build();
    }

    private static String perms(Path p) throws IOException {
        return PosixFilePermissions.toString(Files.getPosixFilePermissions(p, LinkOption.NOFOLLOW_LINKS));
    }

    private static IOException refused(Path path) {
        try (VfioUserServer server = server(path, 0666)) {
            IOException e = assertThrows(IOException.class, server::start);
            assertFalse(server.isServing());
            return e;
        }
    }

    @Test
    void aSymlinkToARegularFileIsRefusedAndTheTargetKeepsItsMode() throws IOException {
        Path target = Files.writeString(dir.resolve("disk.img"), "data");
        Files.setPosixFilePermissions(target, PosixFilePermissions.fromString("rw-r-----"));
        Path path = Files.createSymbolicLink(dir.resolve("s.sock"), target);
        IOException e = refused(path);
        assertTrue(e.getMessage().contains("symbolic link"), e.getMessage());
        assertEquals("rw-r-----", perms(target));
        assertEquals("data", Files.readString(target));
        assertTrue(Files.isSymbolicLink(path), "the link is not removed");
    }

    @Test
    void aSymlinkToAStaleSocketIsRefusedNotFollowed() throws IOException {
        Path stale = dir.resolve("stale.sock");
        try (ServerSocketChannel s = ServerSocketChannel.open(UNIX)) {
            s.bind(UnixDomainSocketAddress.of(stale));
        }
        Path path = Files.createSymbolicLink(dir.resolve("s.sock"), stale);
        assertTrue(refused(path).getMessage().contains("symbolic link"));
        assertTrue(Files.exists(stale, LinkOption.NOFOLLOW_LINKS), "the link's target is not deleted");
        assertTrue(Files.isSymbolicLink(path));
    }

    @Test
    void aRegularFileOrADirectoryIsRefusedAndUntouched() throws IOException {
        Path file = Files.writeString(dir.resolve("f.sock"), "not a socket");
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
        IOException e = refused(file);
        assertTrue(e.getMessage().contains("regular file, not a socket"), e.getMessage());
        assertEquals("not a socket", Files.readString(file));
        assertEquals("rw-------", perms(file));
        Path directory = Files.createDirectory(dir.resolve("d.sock"));
        assertTrue(refused(directory).getMessage().contains("directory, not a socket"));
        assertTrue(Files.isDirectory(directory, LinkOption.NOFOLLOW_LINKS));
    }

    @Test
    void aStaleSocketIsReplaced() throws Exception {
        Path path = dir.resolve("s.sock");
        try (ServerSocketChannel stale = ServerSocketChannel.open(UNIX)) {
            stale.bind(UnixDomainSocketAddress.of(path));
        } // closed listener: the file stays, connect gets ECONNREFUSED
        assertTrue(Files.exists(path, LinkOption.NOFOLLOW_LINKS));
        try (VfioUserServer server = server(path, 0600)) {
            server.start();
            assertEquals("rw-------", perms(path));
            Fixture.assertServes(server);
        }
    }

    @Test
    void aLiveSocketIsRefusedAndKeepsServing() throws Exception {
        Path path = dir.resolve("s.sock");
        try (ServerSocketChannel live = ServerSocketChannel.open(UNIX)) {
            live.bind(UnixDomainSocketAddress.of(path));
            IOException e = refused(path);
            assertTrue(e.getMessage().contains("in use"), e.getMessage());
            try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(path))) {
                assertTrue(c.isConnected(), "the live server's socket still accepts connections");
            }
        }
    }

    @Test
    void theModeIsAppliedToTheSocketItself() throws Exception {
        Path path = dir.resolve("s.sock");
        try (VfioUserServer server = server(path, 0660)) {
            server.start();
            assertEquals("rw-rw----", perms(path));
            int mode = (Integer) Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS);
            assertEquals(0140000, mode & 0170000, "a socket, not a link");
            Fixture.assertServes(server);
        }
    }
}
