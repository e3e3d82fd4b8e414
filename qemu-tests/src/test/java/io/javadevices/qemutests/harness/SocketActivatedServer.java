package io.javadevices.qemutests.harness;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The packaged server under systemd-style socket activation, restartable on the same socket: the role a
 * {@code .socket} unit plays is played by {@code systemd-socket-activate -l SOCKET}, which creates the listening
 * socket, waits for the first connection and then execs a small shell that holds the socket as fd 3 for the
 * whole test. Each {@link #startServer} makes that shell start {@code java -jar nvme-server.jar} on it, either as
 * systemd does ({@code LISTEN_PID} set to the server's own pid, {@code LISTEN_FDS=1}: the server finds fd 3 by
 * itself) or with {@code --socket-fd 3}. Between two servers the socket stays open and its file in place: a
 * client that connects meanwhile waits in the listen queue.
 */
public final class SocketActivatedServer implements AutoCloseable {
    /** Reads start commands on stdin; reports each server's pid and exit status. fd 3 stays open throughout. */
    private static final String HOLDER = """
            while IFS= read -r mode; do
              case "$mode" in
                env) ( export LISTEN_PID=$BASHPID; exec "$JAVA" --enable-native-access=ALL-UNNAMED -jar "$JAR" "$@" ) & ;;
                fd) "$JAVA" --enable-native-access=ALL-UNNAMED -jar "$JAR" --socket-fd 3 "$@" & ;;
                *) continue ;;
              esac
              pid=$!
              echo "@@server-pid $pid"
              wait "$pid"
              echo "@@server-exit $?"
            done
            """;
    private static final Pattern PID = Pattern.compile("^@@server-pid (\\d+)$");
    private static final Pattern EXIT = Pattern.compile("^@@server-exit (\\d+)$");
    public static final Path SOCKET_ACTIVATE = Path.of("/usr/bin/systemd-socket-activate");

    private final Process holder;
    private final OutputStream commands;
    private final List<String> lines = new ArrayList<>();
    private final Path socket;

    private SocketActivatedServer(Process holder, Path socket) {
        this.holder = holder;
        this.commands = holder.getOutputStream();
        this.socket = socket;
        Thread.ofPlatform().daemon().name("activated-server-output").start(this::pump);
    }

    /**
     * Creates the listening socket at {@code socket} and the shell that holds it; no server runs yet.
     *
     * @param serverArgs the server's arguments (no --socket: the socket is inherited)
     */
    public static SocketActivatedServer listen(Path socket, String... serverArgs) throws Exception {
        if (!Files.isExecutable(SOCKET_ACTIVATE)) {
            throw new IllegalStateException(SOCKET_ACTIVATE + " is missing: install the systemd package "
                    + "(qemu-tests/image/setup-host.sh does)");
        }
        List<String> command = new ArrayList<>(List.of(SOCKET_ACTIVATE.toString(), "-l", socket.toString(),
                "-E", "JAVA=" + Path.of(System.getProperty("java.home"), "bin", "java"),
                "-E", "JAR=" + ServerProcess.jar(), "/bin/bash", "-c", HOLDER, "holder"));
        command.addAll(List.of(serverArgs));
        System.out.println("[harness] socket activation: " + String.join(" ", command));
        SocketActivatedServer s = new SocketActivatedServer(new ProcessBuilder(command).redirectErrorStream(true).start(),
                socket);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!Files.exists(socket)) {
            if (System.nanoTime() > deadline || !s.holder.isAlive()) {
                s.close();
                throw new IllegalStateException("systemd-socket-activate did not create " + socket + "\n" + s.logTail());
            }
            Thread.sleep(20);
        }
        return s;
    }

    /**
     * Connects to the socket and hangs up at once: the connection systemd-socket-activate waits for before it
     * execs the holder (the first server accepts it and sees a client that left). Succeeds whenever the
     * listening socket exists, whether a server runs or not.
     */
    public void knock() throws IOException {
        try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
            c.finishConnect();
        }
    }

    /**
     * Starts a server on the held socket and waits until it serves.
     *
     * @param environment true: as systemd does (LISTEN_PID/LISTEN_FDS); false: {@code --socket-fd 3}
     * @return the server's pid
     */
    public long startServer(boolean environment) throws Exception {
        int from = lineCount();
        commands.write((environment ? "env\n" : "fd\n").getBytes(StandardCharsets.US_ASCII));
        commands.flush();
        String pidLine = awaitLine(from, l -> PID.matcher(l).matches(), Duration.ofSeconds(60));
        if (pidLine == null || awaitLine(from, l -> l.startsWith("serving "), Duration.ofSeconds(60)) == null) {
            throw new IllegalStateException("the activated server did not start\n" + logTail());
        }
        Matcher m = PID.matcher(pidLine);
        m.matches();
        return Long.parseLong(m.group(1));
    }

    /** SIGTERM to server {@code pid}; returns its exit status once the holder reports it. */
    public int stopServer(long pid) throws Exception {
        int from = lineCount();
        ProcessHandle.of(pid).orElseThrow(() -> new IllegalStateException("no process " + pid)).destroy(); // SIGTERM
        String exit = awaitLine(from, l -> EXIT.matcher(l).matches(), Duration.ofSeconds(60));
        if (exit == null) {
            throw new IllegalStateException("server " + pid + " did not exit after SIGTERM\n" + logTail());
        }
        Matcher m = EXIT.matcher(exit);
        m.matches();
        return Integer.parseInt(m.group(1));
    }

    public int lineCount() {
        synchronized (lines) {
            return lines.size();
        }
    }

    /** Output lines from {@code from} on (server and holder, merged). */
    public List<String> linesFrom(int from) {
        synchronized (lines) {
            return List.copyOf(lines.subList(from, lines.size()));
        }
    }

    private String awaitLine(int from, java.util.function.Predicate<String> match, Duration timeout)
            throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (lines) {
            while (true) {
                for (int i = from; i < lines.size(); i++) {
                    if (match.test(lines.get(i))) {
                        return lines.get(i);
                    }
                }
                long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
                if (left <= 0 || !holder.isAlive()) {
                    return null;
                }
                lines.wait(Math.min(left, 200));
            }
        }
    }

    private void pump() {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(holder.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                System.out.println("[activated] " + line);
                synchronized (lines) {
                    lines.add(line);
                    lines.notifyAll();
                }
            }
        } catch (IOException ignored) {
            // the holder is gone
        }
    }

    public String logTail() {
        synchronized (lines) {
            List<String> tail = lines.subList(Math.max(0, lines.size() - 60), lines.size());
            return tail.isEmpty() ? "  (no output)" : "  " + String.join("\n  ", tail);
        }
    }

    /** Ends the holder and any server it runs (SIGKILL of the process group is not needed: both are ours). */
    @Override
    public void close() {
        holder.descendants().forEach(ProcessHandle::destroyForcibly);
        holder.destroyForcibly();
        try {
            holder.waitFor(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
