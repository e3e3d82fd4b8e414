package io.javadevices.vfiouser.transport;

import io.javadevices.vfiouser.client.ForeignUid;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

import static java.net.StandardProtocolFamily.UNIX;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The bind-then-chmod race, made deterministic with the listener's after-bind seam: whoever can write
 * the socket's directory swaps the fresh socket for something else between bind(2) and setting the mode.
 * A chmod by path would follow the swapped-in symlink (as root with mode 0666: any file made
 * world-writable); the listener must set the mode only on the socket it bound.
 */
class UnixListenerTest {
    @TempDir
    Path dir;

    private static String perms(Path p) throws IOException {
        return PosixFilePermissions.toString(Files.getPosixFilePermissions(p, LinkOption.NOFOLLOW_LINKS));
    }

    private Path victim() throws IOException {
        Path victim = Files.writeString(dir.resolve("victim.conf"), "secret");
        Files.setPosixFilePermissions(victim, PosixFilePermissions.fromString("rw-r-----"));
        return victim;
    }

    private static Runnable swap(Path path, Path replacement, boolean symlink) {
        return () -> {
            try {
                Files.delete(path);
                if (symlink) {
                    Files.createSymbolicLink(path, replacement);
                } else {
                    Files.writeString(path, "planted");
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        };
    }

    @Test
    void aSymlinkSwappedInAfterBindIsNotFollowedByTheModeChange() throws IOException {
        Path victim = victim();
        Path path = dir.resolve("s.sock");
        IOException e = assertThrows(IOException.class, () -> UnixListener.bind(path, 0666, swap(path, victim, true)));
        assertTrue(e.getMessage().contains("replaced by a symbolic link"), e.getMessage());
        assertEquals("rw-r-----", perms(victim), "the link's target keeps its mode");
        assertEquals("secret", Files.readString(victim));
        assertTrue(Files.isSymbolicLink(path), "the planted link is left alone, not deleted");
    }

    @Test
    void aRegularFileSwappedInAfterBindKeepsItsMode() throws IOException {
        Path path = dir.resolve("s.sock");
        IOException e = assertThrows(IOException.class, () -> UnixListener.bind(path, 0666, () -> {
            swap(path, null, false).run();
            try {
                Files.setPosixFilePermissions(path, PosixFilePermissions.fromString("rw-------"));
            } catch (IOException io) {
                throw new UncheckedIOException(io);
            }
        }));
        assertTrue(e.getMessage().contains("replaced by a regular file"), e.getMessage());
        assertEquals("rw-------", perms(path));
        assertEquals("planted", Files.readString(path));
    }

    /** As root: another user's socket swapped in is not ours, so its mode is not ours to change. */
    @Test
    void anotherUsersSocketSwappedInAfterBindKeepsItsMode() throws Exception {
        Assumptions.assumeTrue(ForeignUid.available(), "needs root to create a socket as another uid");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxrwxrwx"));
        Path path = dir.resolve("s.sock");
        ServerSocketChannel[] theirs = new ServerSocketChannel[1];
        try {
            IOException e = assertThrows(IOException.class, () -> UnixListener.bind(path, 0666, () -> {
                try {
                    Files.delete(path);
                    theirs[0] = ForeignUid.call(ForeignUid.NOBODY, () -> {
                        ServerSocketChannel s = ServerSocketChannel.open(UNIX);
                        s.bind(UnixDomainSocketAddress.of(path));
                        Files.setPosixFilePermissions(path, PosixFilePermissions.fromString("rw-------"));
                        return s;
                    });
                } catch (Exception x) {
                    throw new IllegalStateException(x);
                }
            }));
            assertTrue(e.getMessage().contains("replaced by a socket owned by uid " + ForeignUid.NOBODY), e.getMessage());
            assertEquals("rw-------", perms(path));
        } finally {
            if (theirs[0] != null) {
                theirs[0].close();
            }
        }
    }

    @Test
    void theModeIsSetOnTheSocketEvenBeyondTheUmask() throws IOException {
        Path path = dir.resolve("s.sock");
        try (UnixListener listener = UnixListener.bind(path, 0666)) {
            assertEquals("rw-rw-rw-", perms(path), "bits a umask removes are set back, on the socket itself");
            int mode = (Integer) Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS);
            assertEquals(0140000, mode & 0170000, "still a socket");
            try (UnixSocket client = UnixSocket.connect(listener.path(), 0, 0)) {
                assertTrue(client.fd() >= 0);
            }
        }
        assertFalse(Files.exists(path, LinkOption.NOFOLLOW_LINKS), "close unlinks its own socket");
    }
}
