package io.javadevices.qemutests.harness;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.stream.Stream;

/**
 * The packaged CLI ({@code vhost-backend/target/nvme-server.jar}) as a child process, for tests that must
 * kill the server itself (an in-process {@link JavaNvmeServer} would take the test JVM down with it).
 * stdout and stderr are merged, echoed to the test log (prefixed {@code [server name]}) and kept.
 *
 * <p>{@link #start} returns once the server printed its "serving" line, i.e. it is listening: waiting for
 * the socket file alone is not enough, because a SIGKILLed server leaves a stale socket file behind that the
 * next server replaces.
 */
public final class ServerProcess implements AutoCloseable {
    private final String name;
    private final Process process;
    private final List<String> lines = new ArrayList<>();

    private ServerProcess(String name, Process process) {
        this.name = name;
        this.process = process;
        Thread.ofPlatform().daemon().name("server-output-" + name).start(this::pump);
    }

    /**
     * The shaded server jar, found relative to the qemu-tests module directory (failsafe's working
     * directory; {@code basedir} if Maven sets it). Fails with a clear message if it was not built.
     */
    public static Path jar() {
        Path module = Path.of(System.getProperty("basedir", System.getProperty("user.dir"))).toAbsolutePath();
        Path jar = module.resolveSibling("vhost-backend").resolve("target/nvme-server.jar").normalize();
        if (!Files.isRegularFile(jar)) {
            throw new IllegalStateException("server jar " + jar + " is missing: build it first with "
                    + "`mvn -B -q install -DskipTests` (a reactor `mvn verify` packages vhost-backend before qemu-tests)");
        }
        return jar;
    }

    /**
     * Starts {@code java -jar nvme-server.jar --socket SOCKET ARGS...} with this JVM's {@code java} and waits
     * (up to 30 s) until it is listening.
     */
    public static ServerProcess start(String name, Path socket, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-jar", jar().toString(), "--socket", socket.toString()));
        command.addAll(List.of(args));
        System.out.println("[harness] starting server " + name + ": " + String.join(" ", command));
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        ServerProcess server = new ServerProcess(name, p);
        if (!server.awaitLine(l -> l.startsWith("serving "), Duration.ofSeconds(30)) || !Files.exists(socket)) {
            server.close();
            throw new IllegalStateException("server " + name + " did not start listening on " + socket + ":\n"
                    + server.logTail());
        }
        return server;
    }

    private void pump() {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                System.out.println("[server " + name + "] " + line);
                synchronized (lines) {
                    lines.add(line);
                    lines.notifyAll();
                }
            }
        } catch (IOException ignored) {
            // the process is gone
        }
    }

    /** Number of output lines so far (use as {@code from} in {@link #awaitLine(int, Predicate, Duration)}). */
    public int lineCount() {
        synchronized (lines) {
            return lines.size();
        }
    }

    /** Waits for an output line matching {@code match}; false on timeout. */
    public boolean awaitLine(Predicate<String> match, Duration timeout) throws InterruptedException {
        return awaitLine(0, match, timeout);
    }

    /** Waits for an output line at index {@code from} or later matching {@code match}; false on timeout. */
    public boolean awaitLine(int from, Predicate<String> match, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (lines) {
            while (true) {
                for (int i = from; i < lines.size(); i++) {
                    if (match.test(lines.get(i))) {
                        return true;
                    }
                }
                from = lines.size();
                long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
                if (left <= 0) {
                    return false;
                }
                lines.wait(Math.min(left, 200));
            }
        }
    }

    public long pid() {
        return process.pid();
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    /** Open file descriptors of the server process ({@code /proc/PID/fd} entries). */
    public long openFds() {
        try (Stream<Path> fds = Files.list(Path.of("/proc", Long.toString(process.pid()), "fd"))) {
            return fds.count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** SIGKILL ({@link Process#destroyForcibly} on Linux); returns the exit status (137 = 128 + SIGKILL). */
    public int kill9() throws InterruptedException {
        process.destroyForcibly();
        return process.waitFor();
    }

    /** The last lines the server printed. */
    public String logTail() {
        synchronized (lines) {
            List<String> tail = lines.subList(Math.max(0, lines.size() - 60), lines.size());
            return tail.isEmpty() ? "  (no output)" : "  " + String.join("\n  ", tail);
        }
    }

    /** SIGTERM (the server shuts down cleanly: flushes, closes, removes the socket), then SIGKILL after 10 s. */
    @Override
    public void close() {
        if (process.isAlive()) {
            process.destroy();
            try {
                if (!process.waitFor(10, TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                    process.waitFor(10, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                process.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
    }
}
