package io.javadevices.qemutests;

import io.javadevices.qemutests.harness.GuestImage;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * {@code qemu-tests/try-it}, the quick start's first command, run as a newcomer runs it (no terminal, no
 * options): it must show the namespace, Doorbell Buffer Config advertised, fio's IOPS with verify passing next
 * to the server's doorbells per I/O, and leave no container, server process, socket or temporary directory.
 * The script's prerequisite checks are tested too: each failure names what is missing and the fixing command.
 */
class TryItIT {
    private static final Duration RUN_TIMEOUT = Duration.ofMinutes(20);

    record Run(int exit, String output) {
        String why() {
            return "\ntry-it output:\n" + output;
        }

        /** The first match of {@code regex} (multi-line mode), failing with the whole output when none. */
        Matcher find(String regex) {
            Matcher m = Pattern.compile(regex, Pattern.MULTILINE).matcher(output);
            assertTrue(m.find(), "try-it printed no line matching " + regex + why());
            return m;
        }
    }

    @Test
    void firstRunShowsTheControllerAtWorkAndLeavesNothingBehind() throws Exception {
        GuestImage.requireDocker();
        Run run = tryIt(Map.of("TRY_IT_CLASSPATH", testClassPath()));
        assertEquals(0, run.exit(), "exit status" + run.why());
        run.find("^try-it: all steps passed in [0-9.]+ s$");
        // Every step has its header, in order, and says how long it took before the next one starts.
        String[] steps = run.output().split("(?m)^(?===> \\[)");
        assertEquals(12, steps.length, "11 steps (and what came before the first)" + run.why());
        for (int step = 1; step <= 11; step++) {
            assertTrue(steps[step].startsWith("==> [" + step + "/11] "), "step " + step + " in its place" + run.why());
            assertTrue(Pattern.compile("(?m)^    done in [0-9]+\\.[0-9] s$").matcher(steps[step]).find(),
                    "step " + step + " says how long it took" + run.why());
        }

        // nvme list, as the guest's nvme-cli printed it, and the summary's namespace line: 1 GiB of RAM.
        run.find("guest\\| /dev/nvme0n1 .*Java NVMe Controller");
        run.find("^\\s+namespace /dev/nvme0n1: 1073741824 bytes");

        // OACS bit 8, decoded by nvme-cli and by the script.
        run.find("guest\\|\\s+\\[8:8\\] : 0x1\\s+Doorbell Buffer Config Supported");
        long oacs = Long.decode(run.find("^\\s+Doorbell Buffer Config: advertised \\(OACS (0x[0-9a-fA-F]+), bit 8 set\\)$").group(1));
        assertEquals(1, (oacs >> 8) & 1, "OACS bit 8" + run.why());

        // fio's IOPS next to the server's counters over the same seconds (summary lines), from the control plane's
        // stats_get before and after (the stats lines are only the fallback should a call fail).
        Matcher read = run.find("^\\s+randread\\s+(\\d+) IOPS .*\\| server: ([0-9.]+) MMIO doorbells/IO, ([0-9.]+) interrupts/IO \\((\\d+) I/Os, stats_get\\)$");
        assertTrue(Long.parseLong(read.group(1)) > 0, "randread IOPS" + run.why());
        assertTrue(Long.parseLong(read.group(4)) > 1000, "the server counted the randread's I/O" + run.why());
        double doorbellsPerIo = Double.parseDouble(read.group(2));
        // With DBBUF the guest rings an MMIO doorbell only when the device's EventIdx asks for it: measured
        // 0.13 on a 2-core TCG host; without DBBUF it is 1 per I/O or more (DoorbellBufferIT). 0.5 leaves room
        // for a loaded machine while still failing if the shadow doorbells were not used.
        assertTrue(doorbellsPerIo < 0.5, "MMIO doorbells per I/O with DBBUF: " + doorbellsPerIo + run.why());
        Matcher write = run.find("^\\s+randwrite-verify\\s+(\\d+) IOPS .*\\| server: ([0-9.]+) MMIO doorbells/IO, "
                + "([0-9.]+) interrupts/IO \\((\\d+) I/Os of write \\+ verify, stats_get\\) \\| verify: passed \\(64 MiB read back\\)$");
        assertTrue(Long.parseLong(write.group(1)) > 0, "randwrite IOPS" + run.why());
        assertTrue(Long.parseLong(write.group(4)) > 1000, "the server counted the write run's I/O" + run.why());
        assertTrue(Double.parseDouble(write.group(2)) < 1.0, "MMIO doorbells per I/O of the write run" + run.why());

        // Nothing left behind: checked here, not only taken from the script's word.
        String container = run.find("^\\s+container (try-it-\\d+): removed$").group(1);
        long serverPid = Long.parseLong(run.find("^\\s+server pid (\\d+): stopped$").group(1));
        Matcher files = run.find("^\\s+socket (\\S+), control socket (\\S+) and temporary directory (\\S+): removed$");
        assertEquals("", docker("ps", "-aq", "--filter", "name=^/" + container + "$"), "container " + container + " is gone");
        assertFalse(ProcessHandle.of(serverPid).map(ProcessHandle::isAlive).orElse(false), "server process " + serverPid + " is gone");
        assertFalse(run.output().contains("left by the server"), "the server removed its own sockets on SIGTERM" + run.why());
        assertFalse(Files.exists(Path.of(files.group(1))), "socket " + files.group(1) + " is gone");
        assertFalse(Files.exists(Path.of(files.group(2))), "control socket " + files.group(2) + " is gone");
        assertFalse(Files.exists(Path.of(files.group(3))), "temporary directory " + files.group(3) + " is gone");
    }

    @Test
    void withoutADockerEngineItSaysWhatToRun() throws Exception {
        Run run = tryIt(Map.of("DOCKER_HOST", "unix:///nonexistent/docker.sock"));
        assertEquals(1, run.exit(), "exit status" + run.why());
        run.find("^try-it: error: no Docker engine answers");
        run.find("fix: \\S*qemu-tests/image/setup-host\\.sh");
    }

    @Test
    void notAsRootItSaysHowToRunIt() throws Exception {
        assumeTrue("root".equals(System.getProperty("user.name")), "needs root to drop to another user");
        // util-linux setpriv runs the script as uid 65534 (nobody)
        Run run = tryIt(List.of("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"), Map.of());
        assertEquals(1, run.exit(), "exit status" + run.why());
        run.find("^try-it: error: try-it needs root");
        run.find("fix: sudo \\S*try-it");
    }

    @Test
    void withoutAJdk25ItSaysWhereToPutOne(@TempDir Path empty) throws Exception {
        // A mount namespace of its own (util-linux unshare) where /usr/lib/jvm is an empty directory, and no
        // JAVA_HOME: the script finds no JDK 25 and says so before it builds or starts anything.
        assumeTrue(new ProcessBuilder("unshare", "-m", "true").start().waitFor() == 0, "needs unshare -m (root)");
        Run run = tryIt(List.of("unshare", "-m", "sh", "-c",
                "mount --bind " + empty + " /usr/lib/jvm && exec env -u JAVA_HOME \"$@\"", "sh"), Map.of());
        assertEquals(1, run.exit(), "exit status" + run.why());
        run.find("^try-it: error: no JDK 25 found");
        run.find("fix: install a JDK 25 .* or: export JAVA_HOME=");
        assertFalse(run.output().contains("[2/11]"), "nothing was built" + run.why());
    }

    @Test
    void anUnknownOptionIsABadUsage() throws Exception {
        Run run = tryIt(Map.of(), "--no-such-option");
        assertEquals(2, run.exit(), "exit status" + run.why());
        run.find("unknown option --no-such-option \\(see --help\\)");
        Run help = tryIt(Map.of(), "--help");
        assertEquals(0, help.exit(), "exit status" + help.why());
        help.find("^  --interactive ");
    }

    /** Runs the script from the repository root with no terminal, its output echoed to the test log. */
    private static Run tryIt(Map<String, String> env, String... args) throws IOException, InterruptedException {
        return tryIt(List.of(), env, args);
    }

    /** The same, started through {@code launcher} (e.g. a command that changes the user). */
    private static Run tryIt(List<String> launcher, Map<String, String> env, String... args)
            throws IOException, InterruptedException {
        Path script = GuestImage.moduleDir().resolve("try-it");
        List<String> command = new ArrayList<>(launcher);
        command.addAll(List.of("bash", script.toString()));
        String accel = System.getProperty("javadevices.accel", "");
        if (env.containsKey("TRY_IT_CLASSPATH") && !accel.isEmpty()) {
            command.addAll(List.of("--accel", accel.toLowerCase()));
        }
        command.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(command).directory(script.getParent().getParent().toFile())
                .redirectErrorStream(true).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        pb.environment().putAll(env);
        Process p = pb.start();
        StringBuilder output = new StringBuilder();
        Thread pump = Thread.ofPlatform().daemon().name("try-it-output").start(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) {
                    System.out.println("[try-it] " + line);
                    synchronized (output) {
                        output.append(line).append('\n');
                    }
                }
            } catch (IOException ignored) {
                // the script is gone
            }
        });
        if (!p.waitFor(RUN_TIMEOUT.toMinutes(), TimeUnit.MINUTES)) {
            p.destroy(); // SIGTERM: the script's trap cleans up
            if (!p.waitFor(1, TimeUnit.MINUTES)) {
                p.destroyForcibly();
            }
            pump.join(5_000);
            fail("try-it did not finish in " + RUN_TIMEOUT + ":\n" + output);
        }
        pump.join(10_000);
        synchronized (output) {
            return new Run(p.exitValue(), output.toString());
        }
    }

    /**
     * The class path of these tests, handed to the script so that it does not recompile this module while the
     * test runs (the script's own build is what a newcomer's first run does; here Maven built it already).
     */
    private static String testClassPath() {
        String cp = System.getProperty("surefire.test.class.path", "");
        if (cp.isEmpty() || !cp.contains("test-classes")) {
            cp = System.getProperty("java.class.path", "");
        }
        assertTrue(cp.contains("test-classes"), "no usable test class path in this JVM: " + cp);
        return cp;
    }

    private static String docker(String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of("docker"));
        command.addAll(List.of(args));
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "docker " + String.join(" ", args));
        assertEquals(0, p.exitValue(), "docker " + String.join(" ", args) + ": " + out);
        return out;
    }
}
