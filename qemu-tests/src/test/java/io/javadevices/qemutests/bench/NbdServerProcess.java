package io.javadevices.qemutests.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * An NBD server ({@code qemu-nbd} or {@code nbdkit}) as a child process of the test JVM, serving on a Unix socket
 * in a directory the QEMU container sees. Its output goes to a log file next to the socket, shown when it fails.
 *
 * <p>{@link #start} returns once the server greets a connection on the socket (the file alone can exist before
 * the server listens), and fails naming the server, with its exit status and log, if it exits or never listens. Every
 * process started here is also ended by a JVM shutdown hook, so that an interrupted benchmark (Ctrl-C, a
 * failsafe timeout) leaves no server behind.
 */
final class NbdServerProcess implements AutoCloseable {
    private static final Set<Process> LIVE = ConcurrentHashMap.newKeySet();

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> LIVE.forEach(Process::destroyForcibly), "nbd-server-reaper"));
    }

    private final String name;
    private final Process process;
    private final Path log;
    private final List<String> command;

    private NbdServerProcess(String name, Process process, Path log, List<String> command) {
        this.name = name;
        this.process = process;
        this.log = log;
        this.command = command;
    }

    /** Starts {@code command} and waits (up to {@code timeout}) until the server greets a client on {@code socket}. */
    static NbdServerProcess start(String name, Path socket, List<String> command, Duration timeout)
            throws IOException, InterruptedException {
        Path log = socket.resolveSibling(socket.getFileName() + ".log");
        System.out.println("[bench] starting " + name + ": " + String.join(" ", command));
        Process p;
        try {
            p = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        } catch (IOException e) {
            throw new IllegalStateException("NBD server " + name + " could not be started (" + command.getFirst()
                    + " installed? qemu-tests/image/setup-host.sh installs qemu-utils and nbdkit): " + e.getMessage(), e);
        }
        LIVE.add(p);
        NbdServerProcess server = new NbdServerProcess(name, p, log, List.copyOf(command));
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            if (!p.isAlive()) {
                server.close();
                throw new IllegalStateException("NBD server " + name + " exited with status " + p.exitValue()
                        + " before listening on " + socket + "; command: " + String.join(" ", command) + "\n"
                        + server.logTail());
            }
            if (Files.exists(socket) && accepts(socket)) {
                return server;
            }
            if (System.nanoTime() > deadline) {
                server.close();
                throw new IllegalStateException("NBD server " + name + " did not listen on " + socket + " within "
                        + timeout.toSeconds() + " s; command: " + String.join(" ", command) + "\n" + server.logTail());
            }
            Thread.sleep(50);
        }
    }

    /**
     * True once the server on {@code socket} negotiates: a fixed-newstyle server (NBD protocol, "Newstyle
     * negotiation") greets with "NBDMAGIC", "IHAVEOPT" and its 16-bit flags; the probe answers with its flags
     * (NBD_FLAG_C_FIXED_NEWSTYLE) and NBD_OPT_ABORT, and reads the server's reply, so the server sees a client
     * that left politely rather than logging an error about a dropped connection.
     */
    private static boolean accepts(Path socket) {
        try (SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
            ch.configureBlocking(false);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
            ByteBuffer greeting = ByteBuffer.allocate(18);
            if (!fill(ch, greeting, deadline)
                    || !new String(greeting.array(), 0, 16, StandardCharsets.US_ASCII).equals("NBDMAGICIHAVEOPT")) {
                return false;
            }
            ByteBuffer abort = ByteBuffer.allocate(20).putInt(1).put("IHAVEOPT".getBytes(StandardCharsets.US_ASCII))
                    .putInt(2).putInt(0).flip(); // client flags, then option 2 (NBD_OPT_ABORT) with no data
            while (abort.hasRemaining() && System.nanoTime() < deadline) {
                ch.write(abort);
            }
            fill(ch, ByteBuffer.allocate(20), deadline); // the option reply (magic, option, type, length); best effort
            return true;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** Reads until {@code buffer} is full; false at end of stream or at {@code deadline}. */
    private static boolean fill(SocketChannel ch, ByteBuffer buffer, long deadline) throws IOException, InterruptedException {
        while (buffer.hasRemaining()) {
            if (ch.read(buffer) < 0 || System.nanoTime() > deadline) {
                return false;
            }
            if (buffer.hasRemaining()) {
                Thread.sleep(5);
            }
        }
        return true;
    }

    /** The command line, for the report (how to reproduce the export). */
    String commandLine() {
        return String.join(" ", command);
    }

    /** The server's output so far (the last 30 lines), indented. */
    String logTail() {
        try {
            List<String> lines = Files.exists(log) ? Files.readAllLines(log) : List.of();
            List<String> tail = new ArrayList<>(lines.subList(Math.max(0, lines.size() - 30), lines.size()));
            return tail.isEmpty() ? "  (" + name + " printed nothing)" : "  " + name + "> " + String.join("\n  " + name + "> ", tail);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    boolean isAlive() {
        return process.isAlive();
    }

    /** SIGTERM, then SIGKILL after 5 s; waits for the process to be gone. */
    @Override
    public void close() {
        try {
            if (process.isAlive()) {
                process.destroy();
                if (!process.waitFor(5, TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                    process.waitFor(10, TimeUnit.SECONDS);
                }
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        } finally {
            LIVE.remove(process);
        }
    }
}
