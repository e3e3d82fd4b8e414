package io.javadevices.vfiouser.rpc;

import io.javadevices.vfiouser.sys.ErrnoException;
import io.javadevices.vfiouser.sys.Threads;
import io.javadevices.vfiouser.transport.UnixSocket;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * One control-plane client: reads its lines ({@link LineBuffer}, at most {@link RpcCodec#MAX_LINE_BYTES}),
 * decodes each ({@link RpcCodec}), runs it ({@link RpcMethods#call}, under the control lock) and writes the
 * response line, in order. A notification is run and not answered (JSON-RPC 2.0 §4.1); a blank line is skipped;
 * an oversized line gets its error and the connection closes (its end cannot be found safely). Fds the client
 * sends are discarded by the kernel (the socket is read without a control buffer).
 */
final class RpcSession implements Runnable {
    private static final int CHUNK = 64 * 1024;

    private final RpcServer server;
    private final UnixSocket socket;
    private final String name;
    private final Thread thread;
    private final LineBuffer lines = new LineBuffer(RpcCodec.MAX_LINE_BYTES);
    private Arena arena;
    private MemorySegment out;
    private volatile boolean ended;

    RpcSession(RpcServer server, int fd, String name) {
        this.server = server;
        this.socket = new UnixSocket(fd, 0, 0);
        this.name = name;
        this.thread = Thread.ofPlatform().name("rpc-client " + name).daemon().unstarted(this);
    }

    void start() {
        thread.start();
    }

    boolean ended() {
        return ended;
    }

    /** Wakes the session's blocked read or write; it then ends. Any thread. */
    void disconnect() {
        socket.shutdown();
    }

    void join() {
        Threads.joinUninterruptibly(thread);
    }

    @Override
    public void run() {
        try (Arena a = Arena.ofConfined()) {
            arena = a;
            MemorySegment in = a.allocate(CHUNK);
            byte[] chunk = new byte[CHUNK];
            while (true) {
                long n = socket.receive(in, 0, CHUNK, false);
                if (n <= 0) {
                    return;
                }
                MemorySegment.copy(in, JAVA_BYTE, 0, chunk, 0, (int) n);
                LineBuffer.Result result = lines.feed(chunk, 0, (int) n, this::handle);
                if (result == LineBuffer.Result.OVERSIZED) {
                    server.oversized.incrementAndGet();
                    server.clientLog().warn("JSON-RPC client " + name + " sent a line longer than "
                            + RpcCodec.MAX_LINE_BYTES + " bytes; disconnected");
                    send(RpcCodec.error(null, new RpcError(RpcError.INVALID_REQUEST, "request line longer than "
                            + RpcCodec.MAX_LINE_BYTES + " bytes")));
                    return;
                }
                if (result == LineBuffer.Result.STOPPED) {
                    return;
                }
            }
        } catch (ErrnoException disconnected) {
            // the client went away (ECONNRESET, EPIPE) or the server shut the socket down
        } finally {
            socket.close();
            ended = true;
        }
    }

    /** One line: false to stop (the response could not be sent). */
    private boolean handle(byte[] bytes, int offset, int length) {
        if (blank(bytes, offset, length)) {
            return true;
        }
        server.requests.incrementAndGet();
        RpcCodec.Decoded decoded = RpcCodec.decode(bytes, offset, length);
        if (decoded instanceof RpcCodec.Invalid invalid) {
            server.clientLog().warn("JSON-RPC client " + name + " sent an invalid request: "
                    + invalid.error().getMessage());
            return answer(RpcCodec.error(invalid.id(), invalid.error()), true);
        }
        RpcCodec.Request request = (RpcCodec.Request) decoded;
        String response;
        boolean error = true;
        Runnable afterReply = () -> { };
        try {
            RpcMethods.Answer answer = server.methods().call(request.method(), request.params());
            response = RpcCodec.result(request.id(), answer.result());
            error = false;
            afterReply = answer.afterReply();
        } catch (RpcError e) {
            response = RpcCodec.error(request.id(), e);
        } catch (RuntimeException e) {
            System.getLogger(RpcServer.class.getName()).log(System.Logger.Level.ERROR, "JSON-RPC " + request.method()
                    + " failed", e);
            response = RpcCodec.error(request.id(), new RpcError(RpcError.INTERNAL_ERROR, "internal error: "
                    + request.method() + " failed: " + e));
        }
        boolean sent = request.notification() || answer(response, error);
        afterReply.run();
        return sent;
    }

    private boolean answer(String response, boolean error) {
        if (error) {
            server.errors.incrementAndGet();
        }
        try {
            send(response);
            return true;
        } catch (ErrnoException e) {
            return false;
        }
    }

    private void send(String response) throws ErrnoException {
        byte[] line = RpcCodec.line(response);
        if (out == null || out.byteSize() < line.length) {
            out = arena.allocate(Math.max(line.length, out == null ? 4096 : out.byteSize() * 2));
        }
        MemorySegment.copy(line, 0, out, JAVA_BYTE, 0, line.length);
        socket.send(out, 0, line.length, null, 0);
    }

    private static boolean blank(byte[] b, int offset, int length) {
        for (int i = offset; i < offset + length; i++) {
            if (b[i] != ' ' && b[i] != '\t' && b[i] != '\r') {
                return false;
            }
        }
        return true;
    }
}
