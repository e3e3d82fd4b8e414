package io.javadevices.vfiouser.cli;

import io.javadevices.vfiouser.client.SocketFds;
import io.javadevices.vfiouser.sys.LibC;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code --socket-fd N} with every kind of fd that is not a listening AF_UNIX stream socket: refused before
 * anything starts, as bad usage (exit 2) with a message naming the fd and what it is.
 */
class SocketFdOptionTest {
    @TempDir
    Path dir;



    private void assertRefused(int fd, String what) {
        try {
            CliRun r = CliRun.of("--socket-fd", Integer.toString(fd), "--device", "dma-copy");
            assertEquals(2, r.code(), r.err());
            assertTrue(r.err().contains("refusing the socket to serve on: inherited fd " + fd + " " + what), r.err());
        } finally {
            LibC.closeQuietly(fd);
        }
    }

    @Test
    void refusesEveryFdThatIsNotAListeningUnixStreamSocket() throws Exception {
        assertRefused(SocketFds.closed(), "is not open");
        assertRefused(SocketFds.notASocket(), "is not a socket");
        assertRefused(SocketFds.inet(), "is a socket of address family 2, not AF_UNIX");
        assertRefused(SocketFds.datagram(dir.resolve("d.sock")), "is an AF_UNIX socket of type 2, not SOCK_STREAM");
        assertRefused(SocketFds.boundNotListening(dir.resolve("n.sock")), "is an AF_UNIX stream socket that is not listening");
        assertRefused(SocketFds.abstractListening("javadevices-cli-" + ProcessHandle.current().pid()),
                "is a listening socket bound to no filesystem path");
        assertTrue(Files.exists(dir.resolve("n.sock")), "a refused socket's file is left alone");
    }

    @Test
    void badUsage() throws Exception {
        assertEquals(2, CliRun.of("--socket-fd", "-1").code());
        assertEquals(2, CliRun.of("--socket-fd", "three").code());
        int fd = SocketFds.listening(dir.resolve("l.sock"));
        try {
            CliRun both = CliRun.of("--socket-fd", Integer.toString(fd), "--socket", dir.resolve("x.sock").toString());
            assertEquals(2, both.code());
            assertTrue(both.err().contains("not both"), both.err());
        } finally {
            LibC.closeQuietly(fd);
        }
        assertEquals(2, CliRun.of("--socket", dir.resolve("y.sock").toString(), "--metrics-port", "70000").code());
    }
}
