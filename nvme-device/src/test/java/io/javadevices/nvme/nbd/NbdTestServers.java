package io.javadevices.nvme.nbd;

import org.junit.jupiter.api.Assumptions;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Real NBD servers for the tests ({@code qemu-nbd}, {@code nbdkit}) on Unix sockets in a temporary directory.
 * Missing binaries fail the test when the environment variable CI is set (the CI image installs them), else
 * skip it with a message.
 */
public final class NbdTestServers implements AutoCloseable {
    private final Path dir;
    private final List<Process> processes = new ArrayList<>();

    NbdTestServers(Path dir) {
        this.dir = dir;
    }

    public static void require(String binary) {
        boolean found = false;
        for (String p : System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(":")) {
            if (Files.isExecutable(Path.of(p, binary))) {
                found = true;
                break;
            }
        }
        if (!found) {
            String message = binary + " is not installed (Debian: apt-get install "
                    + (binary.equals("nbdkit") ? "nbdkit" : "qemu-utils") + ")";
            if (System.getenv("CI") != null) {
                throw new AssertionError(message + "; CI needs it for the NBD tests");
            }
            Assumptions.abort(message + ": NBD test skipped");
        }
    }

    Path dir() {
        return dir;
    }

    /** {@code nbdkit --unix SOCKET --foreground ARGS...}; returns the socket once it accepts connections. */
    Path nbdkit(String socketName, String... args) throws IOException, InterruptedException {
        require("nbdkit");
        Path socket = dir.resolve(socketName);
        List<String> command = new ArrayList<>(List.of("nbdkit", "--unix", socket.toString(), "--foreground"));
        command.addAll(List.of(args));
        return start(command, socket);
    }

    /** {@code nbdkit -i 127.0.0.1 -p PORT --foreground ARGS...} on a free TCP port; returns the port. */
    int nbdkitTcp(String... args) throws IOException, InterruptedException {
        require("nbdkit");
        int port;
        try (var probe = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            port = probe.getLocalPort();
        }
        List<String> command = new ArrayList<>(List.of("nbdkit", "-i", "127.0.0.1", "-p", String.valueOf(port),
                "--foreground"));
        command.addAll(List.of(args));
        Process process = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(dir.resolve("tcp.out").toFile()).start();
        processes.add(process);
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (true) {
            try (var probe = java.nio.channels.SocketChannel.open(new java.net.InetSocketAddress("127.0.0.1", port))) {
                return port;
            } catch (IOException notYet) {
                if (System.nanoTime() > end || !process.isAlive()) {
                    throw new IOException(command + " does not listen: " + Files.readString(dir.resolve("tcp.out")));
                }
                Thread.sleep(10);
            }
        }
    }

    /** {@code qemu-nbd --socket=SOCKET --persistent --shared=8 ARGS... IMAGE}. */
    Path qemuNbd(String socketName, Path image, String... args) throws IOException, InterruptedException {
        require("qemu-nbd");
        Path socket = dir.resolve(socketName);
        List<String> command = new ArrayList<>(List.of("qemu-nbd", "--socket=" + socket, "--persistent", "--shared=8"));
        command.addAll(List.of(args));
        command.add(image.toString());
        return start(command, socket);
    }

    private Path start(List<String> command, Path socket) throws IOException, InterruptedException {
        Files.deleteIfExists(socket);
        Process process = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(dir.resolve(socket.getFileName() + ".out").toFile()).start();
        processes.add(process);
        try {
            awaitListening(process, socket);
        } catch (IOException e) {
            throw new IOException(command + ": " + e.getMessage() + ": "
                    + Files.readString(dir.resolve(socket.getFileName() + ".out")), e);
        }
        return socket;
    }

    /** Waits until {@code process} accepts connections on {@code socket}. */
    public static void awaitListening(Process process, Path socket) throws IOException, InterruptedException {
        List<String> command = process.info().arguments().map(List::of).orElse(List.of());
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!Files.exists(socket)) {
            if (!process.isAlive()) {
                throw new IOException(command + " exited with " + process.exitValue());
            }
            if (System.nanoTime() > end) {
                throw new IOException(command + " did not create " + socket);
            }
            Thread.sleep(10);
        }
        // The socket file appears at bind(), a moment before listen(): wait until a connection is accepted.
        while (true) {
            try (var probe = java.nio.channels.SocketChannel.open(java.net.UnixDomainSocketAddress.of(socket))) {
                return;
            } catch (IOException notYet) {
                if (System.nanoTime() > end || !process.isAlive()) {
                    throw new IOException(command + " does not accept connections on " + socket, notYet);
                }
                Thread.sleep(10);
            }
        }
    }

    /** SIGKILLs every server started so far and waits for them to be gone. */
    void killAll() throws InterruptedException {
        for (Process p : processes) {
            p.destroyForcibly();
        }
        for (Process p : processes) {
            p.waitFor(10, TimeUnit.SECONDS);
        }
        processes.clear();
    }

    @Override
    public void close() throws InterruptedException {
        killAll();
    }

    static String uri(Path socket, String export) {
        return "nbd+unix:///" + export + "?socket=" + socket;
    }
}
