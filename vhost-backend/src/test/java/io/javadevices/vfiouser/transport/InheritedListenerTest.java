package io.javadevices.vfiouser.transport;

import io.javadevices.vfiouser.client.SocketFds;
import io.javadevices.vfiouser.sys.LibC;
import io.javadevices.vfiouser.sys.SocketOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** {@link UnixListener#adopt}: serves on the socket it is handed, refuses every fd that only looks like one. */
class InheritedListenerTest {
    @TempDir
    Path dir;

    @Test
    void adoptsAListeningUnixStreamSocketAndLeavesItsFile() throws Exception {
        Path path = dir.resolve("inherited.sock");
        int fd = SocketFds.listening(path);
        UnixListener listener = UnixListener.adopt(fd);
        try {
            assertTrue(listener.inherited());
            assertEquals(path.toAbsolutePath(), listener.path());
            assertNotEquals(0, LibC.fcntl(fd, SocketOptions.F_GETFD, 0) & SocketOptions.FD_CLOEXEC, "close-on-exec");
            assertNotEquals(0, LibC.fcntl(fd, LibC.F_GETFL, 0) & LibC.O_NONBLOCK, "non-blocking");
            try (UnixSocket client = UnixSocket.connect(path, 0, 0)) {
                int accepted = listener.accept();
                assertTrue(accepted >= 0);
                LibC.close(accepted);
            }
        } finally {
            listener.close();
        }
        assertTrue(Files.exists(path), "the socket file of an inherited socket belongs to its creator");
    }

    @Test
    void wakeupStopsAnAcceptOnAnAdoptedSocket() throws Exception {
        UnixListener listener = UnixListener.adopt(SocketFds.listening(dir.resolve("w.sock")));
        try {
            listener.wakeup();
            assertEquals(-1, listener.accept());
        } finally {
            listener.close();
        }
    }

    private static void assertRefused(int fd, String expected) {
        try {
            IOException e = assertThrows(IOException.class, () -> UnixListener.adopt(fd));
            assertTrue(e.getMessage().contains("inherited fd " + fd + " " + expected), e.getMessage());
            assertThrows(IOException.class, () -> UnixListener.checkInherited(fd));
        } finally {
            LibC.closeQuietly(fd);
        }
    }

    @Test
    void refusesWhatIsNotAListeningUnixStreamSocket() throws Exception {
        assertRefused(SocketFds.closed(), "is not open");
        assertRefused(SocketFds.notASocket(), "is not a socket");
        assertRefused(SocketFds.inet(), "is a socket of address family 2, not AF_UNIX");
        assertRefused(SocketFds.datagram(dir.resolve("d.sock")), "is an AF_UNIX socket of type 2, not SOCK_STREAM");
        assertRefused(SocketFds.seqpacketListening(dir.resolve("q.sock")), "is an AF_UNIX socket of type 5");
        assertRefused(SocketFds.boundNotListening(dir.resolve("n.sock")), "is an AF_UNIX stream socket that is not listening");
        assertRefused(SocketFds.abstractListening("javadevices-test-" + ProcessHandle.current().pid()),
                "is a listening socket bound to no filesystem path");
    }

    @Test
    void refusedFdIsLeftAsItWas() throws Exception {
        int fd = SocketFds.boundNotListening(dir.resolve("keep.sock"));
        try {
            int flags = LibC.fcntl(fd, LibC.F_GETFL, 0);
            assertThrows(IOException.class, () -> UnixListener.adopt(fd));
            assertEquals(flags, LibC.fcntl(fd, LibC.F_GETFL, 0), "a refused fd is not modified");
            assertEquals(0, SocketOptions.intOption(fd, SocketOptions.SO_ACCEPTCONN), "still open, still ours");
        } finally {
            LibC.closeQuietly(fd);
        }
    }
}
