package io.javadevices.nvme.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A scripted NBD server on a Unix socket, for what real servers never do: connection {@code i} behaves as
 * {@code modes[min(i, last)]}. It speaks fixed newstyle, answers NBD_OPT_GO (or refuses it), then replies to
 * every request according to its mode. Data it serves: every byte 0xAB.
 */
final class FakeNbdServer implements AutoCloseable {
    enum Mode { GOOD, STALL_READING, WRONG_HANDLE, WRONG_MAGIC, SHORT_PAYLOAD, OVERRUN, NEVER_REPLY, GO_UNSUPPORTED, UNKNOWN_EXPORT }

    static final long SIZE = 1 << 20;
    private final ServerSocketChannel server;
    private final List<Mode> modes;
    private final Thread acceptor;
    private final AtomicInteger connections = new AtomicInteger();
    /** STALL_READING: the server reads no request until this opens (the client's socket fills meanwhile). */
    final java.util.concurrent.CountDownLatch resume = new java.util.concurrent.CountDownLatch(1);
    private volatile boolean closed;

    FakeNbdServer(Path socket, Mode... modes) throws IOException {
        Files.deleteIfExists(socket);
        this.modes = List.of(modes);
        this.server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(socket));
        this.acceptor = Thread.ofPlatform().daemon().name("fake-nbd").start(this::acceptLoop);
    }

    /** Connections accepted so far. */
    int connections() {
        return connections.get();
    }

    private void acceptLoop() {
        while (!closed) {
            try {
                SocketChannel client = server.accept();
                Mode mode = modes.get(Math.min(connections.getAndIncrement(), modes.size() - 1));
                Thread.ofPlatform().daemon().start(() -> serve(client, mode));
            } catch (IOException e) {
                return;
            }
        }
    }

    private void serve(SocketChannel client, Mode mode) {
        try (client) {
            boolean noZeroes = mode != Mode.GO_UNSUPPORTED; // the fallback path also reads the 124 zero bytes
            write(client, ByteBuffer.allocate(18).putLong(0x4e42444d41474943L).putLong(0x49484156454F5054L)
                    .putShort((short) (1 | (noZeroes ? 2 : 0))).flip());
            read(client, 4);
            while (true) { // options
                ByteBuffer option = read(client, 16);
                option.getLong();
                int type = option.getInt();
                int length = option.getInt();
                ByteBuffer data = read(client, length);
                if (type == 1) { // NBD_OPT_EXPORT_NAME
                    ByteBuffer reply = ByteBuffer.allocate(noZeroes ? 10 : 134);
                    write(client, reply.putLong(SIZE).putShort((short) (1 | 4)).position(reply.capacity()).flip());
                    break;
                }
                if (type != 7) {
                    optionReply(client, type, 0x80000001, new byte[0]);
                    continue;
                }
                if (mode == Mode.GO_UNSUPPORTED) {
                    optionReply(client, 7, 0x80000001, new byte[0]);
                    continue;
                }
                if (mode == Mode.UNKNOWN_EXPORT) {
                    int nameLength = data.getInt(0);
                    String name = new String(data.array(), 4, nameLength, StandardCharsets.UTF_8);
                    optionReply(client, 7, 0x80000006, ("no export " + name).getBytes(StandardCharsets.UTF_8));
                    continue;
                }
                optionReply(client, 7, 3, ByteBuffer.allocate(12).putShort((short) 0).putLong(SIZE)
                        .putShort((short) (1 | 4)).array());
                optionReply(client, 7, 1, new byte[0]);
                break;
            }
            if (mode == Mode.STALL_READING) {
                resume.await();
            }
            while (true) { // transmission
                ByteBuffer request = read(client, 28);
                request.getInt();
                request.getShort();
                int command = request.getShort();
                long cookie = request.getLong();
                request.getLong();
                int length = request.getInt();
                if (command == 1) {
                    read(client, length);
                }
                if (command == 2) {
                    return;
                }
                if (mode == Mode.NEVER_REPLY) {
                    continue;
                }
                int magic = mode == Mode.WRONG_MAGIC ? 0xdeadbeef : 0x67446698;
                long handle = mode == Mode.WRONG_HANDLE ? cookie ^ 0x0000_1234_0000_0000L : cookie;
                write(client, ByteBuffer.allocate(16).putInt(magic).putInt(0).putLong(handle).flip());
                if (command == 0) {
                    int n = mode == Mode.SHORT_PAYLOAD ? length / 2 : mode == Mode.OVERRUN ? length + 100 : length;
                    byte[] payload = new byte[n];
                    java.util.Arrays.fill(payload, (byte) 0xAB);
                    write(client, ByteBuffer.wrap(payload));
                    if (mode == Mode.SHORT_PAYLOAD) {
                        return;
                    }
                }
            }
        } catch (IOException | InterruptedException e) {
            // the client went away
        }
    }

    private static void optionReply(SocketChannel client, int option, int type, byte[] data) throws IOException {
        write(client, ByteBuffer.allocate(20 + data.length).putLong(0x0003e889045565a9L).putInt(option).putInt(type)
                .putInt(data.length).put(data).flip());
    }

    private static ByteBuffer read(SocketChannel client, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            if (client.read(b) < 0) {
                throw new EOFException();
            }
        }
        return b.flip();
    }

    private static void write(SocketChannel client, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            client.write(b);
        }
    }

    @Override
    public void close() throws IOException, InterruptedException {
        closed = true;
        server.close();
        acceptor.join(5000);
    }
}
