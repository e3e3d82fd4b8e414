package io.javadevices.qemutests.harness;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.StandardProtocolFamily;
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
 * An NBD server on the HOST ({@code qemu-nbd} or {@code nbdkit}) as a child process of the test JVM, listening
 * on a Unix socket next to the Java server (a host process too, so only the vfio-user socket crosses into the
 * QEMU container). It can be stopped (SIGTERM: qemu-nbd flushes its image and exits), killed (SIGKILL, as a
 * crash) and started again on the same socket with the same command line. stdout and stderr of every run are
 * merged, echoed to the test log (prefixed {@code [nbd name]}) and kept for failure messages.
 *
 * <p>{@link #start} returns once the server answers on its socket with the NBD greeting: the probe reads
 * {@code NBDMAGIC IHAVEOPT}, then ends the handshake cleanly with {@code NBD_OPT_ABORT} (NBD protocol,
 * "Fixed newstyle negotiation"), so the server logs no half-open client. Waiting for the socket file alone is
 * not enough: a killed server leaves a stale one behind.
 */
public final class NbdServer implements AutoCloseable {
    /** Processes still running when the JVM exits (a failed test that skipped close()) are killed. */
    private static final Set<Process> LIVE = ConcurrentHashMap.newKeySet();

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> LIVE.forEach(Process::destroyForcibly)));
    }

    private final String name;
    private final Path socket;
    private final String exportName;
    private final List<String> command;
    private final List<String> lines = new ArrayList<>();
    private Process process;
    private int runs;

    private NbdServer(String name, Path socket, String exportName, List<String> command) {
        this.name = name;
        this.socket = socket;
        this.exportName = exportName;
        this.command = List.copyOf(command);
    }

    /**
     * {@code qemu-nbd} serving {@code image} in {@code format} (qcow2, raw) on {@code socket}, as export
     * {@code exportName} ({@code ""} = the default export): persistent (it outlives a client's disconnect,
     * which the Java client's reconnection needs), up to 8 clients, writeback cache (Flush and FUA reach the
     * image), discards passed to the image as holes. Not started yet: call {@link #start}.
     */
    public static NbdServer qemuNbd(String name, Path socket, Path image, String format, String exportName) {
        List<String> command = new ArrayList<>(List.of("qemu-nbd", "--socket=" + socket, "--format=" + format,
                "--persistent", "--shared=8", "--cache=writeback", "--discard=unmap"));
        if (!exportName.isEmpty()) {
            command.add("--export-name=" + exportName);
        }
        command.add(image.toString());
        return new NbdServer(name, socket, exportName, command);
    }

    /**
     * {@code nbdkit} in the foreground on {@code socket}, dying with the test JVM, with a plugin and its
     * arguments, e.g. {@code "--filter=delay", "memory", "256M", "rdelay=1ms", "wdelay=1ms"} (Debian 12's nbdkit
     * 1.32 delay filter takes whole seconds or NNms only: "200us" or "0.0002" are refused).
     */
    public static NbdServer nbdkit(String name, Path socket, String... pluginAndArgs) {
        List<String> command = new ArrayList<>(List.of("nbdkit", "--unix", socket.toString(), "--foreground",
                "--exit-with-parent"));
        command.addAll(List.of(pluginAndArgs));
        return new NbdServer(name, socket, "", command);
    }

    /** Any NBD server {@code command} that listens on {@code socket} (the benchmark's exact command lines). */
    public static NbdServer of(String name, Path socket, List<String> command) {
        return new NbdServer(name, socket, "", command);
    }

    /** The command line, for reports. */
    public String commandLine() {
        return String.join(" ", command);
    }

    /** Starts the server (again, after a stop or kill) and waits up to 30 s until it answers. */
    public synchronized NbdServer start() throws IOException, InterruptedException {
        if (process != null && process.isAlive()) {
            throw new IllegalStateException("nbd server " + name + " is already running");
        }
        Files.deleteIfExists(socket); // a killed server's stale socket file
        runs++;
        System.out.println("[harness] starting nbd server " + name + " (run " + runs + "): " + String.join(" ", command));
        try {
            process = new ProcessBuilder(command).redirectErrorStream(true).start();
        } catch (IOException e) {
            throw new IllegalStateException("cannot run " + command.getFirst() + " (" + e.getMessage()
                    + "): install qemu-utils and nbdkit with qemu-tests/image/setup-host.sh", e);
        }
        LIVE.add(process);
        Process p = process;
        int run = runs;
        Thread.ofPlatform().daemon().name("nbd-output-" + name).start(() -> pump(p, run));
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (!answers()) {
            if (!p.isAlive() || System.nanoTime() > deadline) {
                String why = p.isAlive() ? "no NBD greeting within 30 s" : "it exited with " + p.exitValue();
                close();
                throw new IllegalStateException("nbd server " + name + " did not start: " + why + "\n" + logTail());
            }
            Thread.sleep(50);
        }
        return this;
    }

    /** True if the socket accepts and greets like an NBD newstyle server; the probe then aborts cleanly. */
    private boolean answers() {
        if (!Files.exists(socket)) {
            return false;
        }
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(socket));
            ByteBuffer greeting = ByteBuffer.allocate(18); // "NBDMAGIC", "IHAVEOPT", 16-bit handshake flags
            while (greeting.hasRemaining()) {
                if (ch.read(greeting) < 0) {
                    return false;
                }
            }
            String magic = new String(greeting.array(), 0, 16, StandardCharsets.US_ASCII);
            if (!magic.equals("NBDMAGICIHAVEOPT")) {
                return false;
            }
            ByteBuffer abort = ByteBuffer.allocate(20);
            abort.putInt(3); // client flags: NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES
            abort.put("IHAVEOPT".getBytes(StandardCharsets.US_ASCII)).putInt(2).putInt(0); // NBD_OPT_ABORT, no data
            abort.flip();
            while (abort.hasRemaining()) {
                ch.write(abort);
            }
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private void pump(Process p, int run) {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                System.out.println("[nbd " + name + "#" + run + "] " + line);
                synchronized (lines) {
                    lines.add("#" + run + " " + line);
                }
            }
        } catch (IOException ignored) {
            // the process is gone
        }
    }

    /** The NBD URI of this export for the namespace option: {@code nbd+unix:///EXPORT?socket=PATH}. */
    public String uri() {
        return (exportName.isEmpty() ? "nbd+unix://" : "nbd+unix:///" + exportName) + "?socket=" + socket;
    }

    public Path socket() {
        return socket;
    }

    public synchronized boolean isAlive() {
        return process != null && process.isAlive();
    }

    public synchronized long pid() {
        return process.pid();
    }

    /** SIGTERM and wait (qemu-nbd flushes the image and exits 0); SIGKILL after 20 s. Returns the exit status. */
    public synchronized int stop() throws InterruptedException {
        if (process == null) {
            return -1;
        }
        process.destroy();
        if (!process.waitFor(20, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            process.waitFor();
        }
        LIVE.remove(process);
        return process.exitValue();
    }

    /** SIGKILL, as a crash: nothing is flushed, the socket file stays. Returns the exit status (137). */
    public synchronized int kill9() throws InterruptedException {
        process.destroyForcibly();
        int status = process.waitFor();
        LIVE.remove(process);
        return status;
    }

    /** What the server printed so far, all runs. */
    public String logTail() {
        synchronized (lines) {
            List<String> tail = lines.subList(Math.max(0, lines.size() - 40), lines.size());
            return tail.isEmpty() ? "  (nbd server " + name + ": no output)" : "  " + String.join("\n  ", tail);
        }
    }

    /** Stops the server if it still runs (SIGTERM, then SIGKILL). */
    @Override
    public synchronized void close() {
        if (process != null && process.isAlive()) {
            try {
                stop();
            } catch (InterruptedException e) {
                process.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
    }
}
