package io.javadevices.vfiouser.cli;

import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** Where the inherited socket comes from: {@code --socket-fd}, or sd_listen_fds' environment. */
class SocketActivationTest {
    private static final long PID = 4242;

    @Test
    void explicitFdWins() {
        SocketActivation a = SocketActivation.select(7, false, Map.of("LISTEN_PID", "4242", "LISTEN_FDS", "1"), PID);
        assertEquals(7, a.fd());
        assertTrue(a.reason().contains("--socket-fd"));
        assertThrows(IllegalArgumentException.class, () -> SocketActivation.select(-1, false, Map.of(), PID));
    }

    @Test
    void environmentNamingThisProcessSelectsFd3() {
        SocketActivation a = SocketActivation.select(null, false, Map.of("LISTEN_PID", "4242", "LISTEN_FDS", "2"), PID);
        assertEquals(3, a.fd());
        assertTrue(a.reason().contains("LISTEN_FDS=2"), a.reason());
        assertTrue(a.reason().contains("the other 1 fd(s) are not used"), a.reason());
    }

    @Test
    void environmentIsIgnoredUnlessItNamesThisProcess() {
        assertEquals(-1, SocketActivation.select(null, false, Map.of(), PID).fd());
        assertEquals(-1, SocketActivation.select(null, false, Map.of("LISTEN_PID", "1", "LISTEN_FDS", "1"), PID).fd(),
                "meant for another process (a parent that did not unset them)");
        assertEquals(-1, SocketActivation.select(null, false, Map.of("LISTEN_PID", "4242", "LISTEN_FDS", "0"), PID).fd());
        assertEquals(-1, SocketActivation.select(null, false, Map.of("LISTEN_PID", "4242", "LISTEN_FDS", "x"), PID).fd());
        assertEquals(-1, SocketActivation.select(null, false, Map.of("LISTEN_PID", "4242"), PID).fd());
        assertEquals(-1, SocketActivation.select(null, true, Map.of("LISTEN_PID", "4242", "LISTEN_FDS", "1"), PID).fd(),
                "--socket given: bind it");
    }
}
