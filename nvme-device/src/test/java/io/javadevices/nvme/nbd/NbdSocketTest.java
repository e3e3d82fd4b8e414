package io.javadevices.nvme.nbd;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.EOFException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The NBD client's own socket ({@link NbdSocket}): connection failures are clear errors, bytes travel intact. */
class NbdSocketTest {
    private static final long TIMEOUT = TimeUnit.SECONDS.toNanos(2);
    @TempDir
    Path dir;

    private static NbdUri unix(Path socket) {
        return new NbdUri(null, 0, socket, "");
    }

    @Test
    void aMissingUnixSocketIsAClearError() {
        NbdException e = assertThrows(NbdException.class, () -> NbdSocket.connect(unix(dir.resolve("none.sock")), TIMEOUT));
        assertTrue(e.getMessage().contains("cannot connect") && e.getMessage().contains("none.sock"), e.getMessage());
    }

    @Test
    void aSocketPathLongerThanAUnixAddressHoldsIsRefused() {
        Path deep = dir.resolve("x".repeat(120) + ".sock");
        NbdException e = assertThrows(NbdException.class, () -> NbdSocket.connect(unix(deep), TIMEOUT));
        assertTrue(e.getMessage().contains("107 bytes"), e.getMessage());
    }

    @Test
    void aRefusedTcpPortIsAClearError() throws Exception {
        int port;
        try (ServerSocket probe = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = probe.getLocalPort(); // free once closed: nobody listens there
        }
        NbdUri uri = new NbdUri("127.0.0.1", port, null, "");
        NbdException e = assertThrows(NbdException.class, () -> NbdSocket.connect(uri, TIMEOUT));
        assertTrue(e.getMessage().contains("cannot connect") && e.getMessage().contains(":" + port), e.getMessage());
    }

    @Test
    void anUnknownHostIsAClearError() {
        NbdUri uri = new NbdUri("no-such-host.invalid", 10809, null, "");
        NbdException e = assertThrows(NbdException.class, () -> NbdSocket.connect(uri, TIMEOUT));
        assertTrue(e.getMessage().contains("no-such-host.invalid"), e.getMessage());
    }

    @Test
    void handshakeReadsAndWritesCarryTheBytesAndEndOfStreamIsAnEof() throws Exception {
        Path path = dir.resolve("echo.sock");
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(path));
            NbdSocket socket = NbdSocket.connect(unix(path), TIMEOUT);
            try (SocketChannel peer = server.accept()) {
                byte[] sent = new byte[100_000]; // more than one staging chunk
                for (int i = 0; i < sent.length; i++) {
                    sent[i] = (byte) (i * 31);
                }
                Thread writer = Thread.ofPlatform().start(() -> {
                    try {
                        socket.writeFully(ByteBuffer.wrap(sent));
                    } catch (Exception e) {
                        throw new AssertionError(e);
                    }
                });
                ByteBuffer got = ByteBuffer.allocate(sent.length);
                while (got.hasRemaining()) {
                    peer.read(got);
                }
                writer.join();
                assertArrayEquals(sent, got.array(), "what the client wrote");
                peer.write(ByteBuffer.wrap(sent, 0, 70_000));
                ByteBuffer back = ByteBuffer.allocate(70_000);
                socket.readFully(back, "test");
                assertArrayEquals(java.util.Arrays.copyOf(sent, 70_000), back.array(), "what the client read");
            }
            assertThrows(EOFException.class, () -> socket.readFully(ByteBuffer.allocate(1), "test"),
                    "the peer closed: end of stream");
            socket.close();
            socket.close(); // idempotent: the descriptor is released once
        }
    }
}
