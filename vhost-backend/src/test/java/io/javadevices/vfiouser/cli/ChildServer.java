package io.javadevices.vfiouser.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * {@code ServerMain} in a child {@code java} process (this JVM's, with the test class path), optionally started
 * through a launcher such as {@code systemd-socket-activate}: for what only a real process shows (signals, exit
 * status, inherited fds). Its stdout and stderr go to files in {@code dir}.
 */
final class ChildServer implements AutoCloseable {
    static final Path SOCKET_ACTIVATE = Path.of("/usr/bin/systemd-socket-activate");

    final Process process;
    private final Path out;
    private final Path err;

    private ChildServer(Process process, Path out, Path err) {
        this.process = process;
        this.out = out;
        this.err = err;
    }

    /** {@code launcher... java ServerMain args...}. */
    static ChildServer start(Path dir, String name, List<String> launcher, String... args) throws IOException {
        List<String> command = new ArrayList<>(launcher);
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.add("--enable-native-access=ALL-UNNAMED");
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(ServerMain.class.getName());
        command.addAll(List.of(args));
        Path out = dir.resolve(name + ".out");
        Path err = dir.resolve(name + ".err");
        Process p = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        return new ChildServer(p, out, err);
    }

    static ChildServer start(Path dir, String name, String... args) throws IOException {
        return start(dir, name, List.of(), args);
    }

    String out() throws IOException {
        return Files.readString(out);
    }

    String err() throws IOException {
        return Files.readString(err);
    }

    /** Waits until stdout has a line starting with {@code prefix} (the server prints "serving ..." once listening). */
    String awaitOut(String prefix, Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            for (String line : out().lines().toList()) {
                if (line.startsWith(prefix)) {
                    return line;
                }
            }
            if (!process.isAlive()) {
                throw new AssertionError("server exited with " + process.exitValue() + " before printing '" + prefix
                        + "'\nstdout:\n" + out() + "\nstderr:\n" + err());
            }
            Thread.sleep(20);
        }
        throw new AssertionError("no '" + prefix + "' line in " + timeout + "\nstdout:\n" + out() + "\nstderr:\n" + err());
    }

    void signal(String name) throws Exception {
        Process kill = new ProcessBuilder("kill", "-" + name, Long.toString(process.pid())).inheritIO().start();
        if (kill.waitFor() != 0) {
            throw new AssertionError("kill -" + name + " failed");
        }
    }

    int awaitExit() throws Exception {
        if (!process.waitFor(20, TimeUnit.SECONDS)) {
            throw new AssertionError("server still running 20 s after being told to stop\nstderr:\n" + err());
        }
        return process.exitValue();
    }

    @Override
    public void close() {
        process.destroyForcibly();
    }
}
