package io.javadevices.vfiouser.server;

import io.javadevices.pci.sample.DmaCopyDevice;
import io.javadevices.vfiouser.client.ForeignUid;
import io.javadevices.vfiouser.client.TestClient;
import io.javadevices.vfiouser.sys.Errno;
import io.javadevices.vfiouser.sys.ErrnoException;
import io.javadevices.vfiouser.sys.FileIdentity;
import io.javadevices.vfiouser.transport.UnixListener;
import io.javadevices.vfiouser.transport.UnixSocket;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.CMD_VERSION;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.FLAG_TYPE_COMMAND;
import static org.junit.jupiter.api.Assertions.*;

/** --allow-uid: the SO_PEERCRED check at accept. */
class PeerCheckTest {
    @TempDir
    Path dir;

    private static final int OWN_UID = FileIdentity.geteuid();
    /** A uid that is not this test's. */
    private static final int OTHER_UID = OWN_UID == 12345 ? 12346 : 12345;

    private VfioUserServer start(int... allowed) throws IOException {
        VfioUserServer.Builder b = VfioUserServer.builder().socket(dir.resolve("dev.sock")).socketMode(0666)
                .device(DmaCopyDevice::new);
        if (allowed.length > 0) {
            b.allowUids(allowed);
        }
        VfioUserServer server = b.build();
        server.start();
        return server;
    }

    private static byte[] versionPayload() {
        byte[] json = TestClient.QEMU_CAPS.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = TestClient.le(4 + json.length + 1);
        b.putShort((short) 0).putShort((short) 0).put(json).put((byte) 0);
        return b.array();
    }

    /** Sends VERSION and asserts the server closes the connection without a single reply byte. */
    private static void assertClosedWithoutReply(Path socket) throws IOException {
        try (TestClient c = TestClient.connect(socket)) {
            try {
                c.send(CMD_VERSION, FLAG_TYPE_COMMAND, versionPayload());
            } catch (ErrnoException alreadyClosed) {
                assertTrue(alreadyClosed.errno() == Errno.EPIPE || alreadyClosed.errno() == Errno.ECONNRESET,
                        alreadyClosed.getMessage());
            }
            IOException e = assertThrows(IOException.class, c::readReply, "no reply to a refused client");
            assertTrue(e instanceof TestClient.Disconnected
                    || (e instanceof ErrnoException x && x.errno() == Errno.ECONNRESET), e.toString());
        }
    }

    /** Connects, completes VERSION and reads the vendor id: the client is served. */
    private static long served(Path socket) throws IOException {
        try (TestClient c = TestClient.connect(socket)) {
            c.version();
            return c.readLong(7, 0, 2);
        }
    }

    @Test
    void aUidNotOnTheListIsClosedBeforeAnyReplyCountedAndTheServerGoesOn() throws Exception {
        try (VfioUserServer server = start(OTHER_UID)) {
            assertClosedWithoutReply(server.socketPath());
            assertEquals(1L, server.resources().get("clients.denied"));
            assertClosedWithoutReply(server.socketPath());
            assertEquals(2L, server.resources().get("clients.denied"));
            assertTrue(server.isServing(), "still accepting after refusals");
            assertEquals(0L, server.resources().get("clients.total"), "a refused client never got a session");
        }
        try (VfioUserServer server = start(OTHER_UID, OWN_UID)) {
            assertEquals(0x4E58, served(server.socketPath()), "a listed uid is served");
            assertEquals(0L, server.resources().get("clients.denied"));
        }
    }

    @Test
    void theDefaultServesTheServersOwnUid() throws Exception {
        try (VfioUserServer server = start()) {
            assertEquals(0x4E58, served(server.socketPath()));
            assertEquals(0L, server.resources().get("clients.denied"));
        }
    }

    /** As root: by default another user is refused and the next (own-uid) client on the same server works. */
    @Test
    void theDefaultRefusesAnotherUserAndThenServesTheNextClient() throws Exception {
        Assumptions.assumeTrue(ForeignUid.available(), "needs root to connect as another uid");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx--x--x")); // nobody may reach the socket
        try (VfioUserServer server = start()) {
            ForeignUid.call(ForeignUid.NOBODY, () -> {
                assertClosedWithoutReply(server.socketPath());
                return null;
            });
            assertEquals(1L, server.resources().get("clients.denied"));
            assertEquals(0x4E58, served(server.socketPath()), "the following allowed client is served");
            assertEquals(1L, server.resources().get("clients.total"));
        }
    }

    /** As root: an explicit list replaces the default, so root itself is refused and the listed user served. */
    @Test
    void anExplicitListReplacesTheDefault() throws Exception {
        Assumptions.assumeTrue(ForeignUid.available(), "needs root to connect as another uid");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx--x--x"));
        try (VfioUserServer server = start(ForeignUid.NOBODY)) {
            assertClosedWithoutReply(server.socketPath());
            assertEquals(0x4E58L, (long) ForeignUid.call(ForeignUid.NOBODY, () -> served(server.socketPath())));
            assertEquals(1L, server.resources().get("clients.denied"));
        }
    }

    @Test
    void refusalsAreCountedEachButLoggedRateLimited() throws Exception {
        PeerGate gate = new PeerGate(new int[] {OTHER_UID});
        try (UnixListener listener = UnixListener.bind(dir.resolve("g.sock"), 0600)) {
            for (int i = 0; i < 5; i++) {
                try (UnixSocket client = UnixSocket.connect(listener.path(), 0, 0)) {
                    int fd = listener.accept();
                    assertFalse(gate.admits(fd, listener.path()));
                }
            }
        }
        assertEquals(5, gate.denied());
        assertEquals(1, gate.reports(), "one log line for a burst of refusals");
    }

    @Test
    void allowListValidation() {
        assertThrows(IllegalArgumentException.class, () -> VfioUserServer.builder().allowUids());
        assertThrows(IllegalArgumentException.class, () -> VfioUserServer.builder().allowUids(1000, -1),
                "(uid_t) -1 is not a uid");
        assertEquals("[0, 1000, 4294967294]", new PeerGate(new int[] {1000, 0, -2, 1000}).describe());
    }
}
