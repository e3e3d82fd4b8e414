package io.javadevices.qemutests.harness;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.model.Device;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.containers.output.OutputFrame;
import org.testcontainers.containers.startupcheck.StartupCheckStrategy;
import org.testcontainers.containers.wait.strategy.AbstractWaitStrategy;
import org.testcontainers.utility.DockerImageName;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One QEMU process in a container from the local guest image, booting the project's guest kernel with
 * a test script. The container has no network ({@code --network none}); the host directory
 * {@code socketDir} is bind-mounted at {@code /sock}, where the Java server's vfio-user socket lives.
 * Guest RAM is a shared memfd ({@code memory-backend-memfd,share=on}) so the server can map it.
 *
 * <p>The guest's serial console streams into the test log (prefixed {@code [guest name]}) and into a
 * buffer; the test script reports results as {@code @@RESULT key=value} lines and the image's init
 * prints {@code @@TEST-EXIT rc} when the script ends, then powers off.
 */
public final class QemuGuest implements AutoCloseable {
    public static final String GUEST_SOCKET_DIR = "/sock";
    private static final Pattern RESULT = Pattern.compile("^@@RESULT ([A-Za-z0-9_.-]+)=(.*)$");
    private static final Pattern EXIT = Pattern.compile("@@TEST-EXIT (-?\\d+)");

    private final String name;
    private final GenericContainer<?> container;
    private final StringBuffer console = new StringBuffer();
    private final StringBuilder partialLine = new StringBuilder();

    private QemuGuest(String name, GenericContainer<?> container) {
        this.name = name;
        this.container = container;
    }

    /** What to boot. */
    public static final class Spec {
        private final String name;
        private final Path socketDir;
        private String script = "";
        private int cpus = 2;
        private int memoryMiB = 1024;
        private final List<String> deviceArgs = new ArrayList<>();

        public Spec(String name, Path socketDir) {
            this.name = name;
            this.socketDir = socketDir;
        }

        /** Shell script (busybox sh) run by the guest's init as {@code /test.sh}. */
        public Spec script(String script) {
            this.script = script;
            return this;
        }

        public Spec cpus(int n) {
            this.cpus = n;
            return this;
        }

        public Spec memoryMiB(int mib) {
            this.memoryMiB = mib;
            return this;
        }

        /** Adds a vfio-user-pci device for a server socket in the socket directory. */
        public Spec vfioUser(String socketFileName) {
            deviceArgs.add("-device");
            deviceArgs.add("{\"driver\":\"vfio-user-pci\",\"socket\":{\"type\":\"unix\",\"path\":\""
                    + GUEST_SOCKET_DIR + "/" + socketFileName + "\"}}");
            return this;
        }

        /** Adds raw QEMU arguments (e.g. a built-in reference device). */
        public Spec qemuArgs(String... args) {
            deviceArgs.addAll(List.of(args));
            return this;
        }

        public QemuGuest start() {
            return QemuGuest.start(this);
        }

        /**
         * Writes the script's cpio next to the socket and returns the container's command: QEMU booting the
         * guest kernel with the image's initramfs plus that cpio (the one QEMU command line of the harness).
         */
        List<String> prepare(Accelerator accel) {
            try {
                Files.write(socketDir.resolve(name + ".cpio"), new Cpio().add("test.sh", script).toBytes());
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
            List<String> command = new ArrayList<>(List.of("sh", "-c",
                    "cat /guest/initrd.img " + GUEST_SOCKET_DIR + "/" + name + ".cpio > /tmp/initrd && exec \"$0\" \"$@\"",
                    "qemu-system-x86_64",
                    "-machine", "q35,accel=" + accel.qemuName(),
                    "-cpu", accel.cpuModel(),
                    "-smp", Integer.toString(cpus),
                    "-m", memoryMiB + "M",
                    "-object", "memory-backend-memfd,id=mem,size=" + memoryMiB + "M,share=on",
                    "-machine", "memory-backend=mem",
                    "-nographic", "-no-reboot", "-nic", "none",
                    "-kernel", "/guest/vmlinuz", "-initrd", "/tmp/initrd",
                    "-append", "console=ttyS0 quiet panic=-1"));
            command.addAll(deviceArgs);
            return command;
        }

        /**
         * The arguments of {@code docker run} that start this guest as {@link #start} does through Testcontainers
         * (same image, no network, never pulled, the socket directory at {@code /sock}, {@code /dev/kvm} under
         * KVM, the same QEMU command), for a shell to run — {@code qemu-tests/try-it} does, because only a
         * {@code docker run -it} can hand the guest's console to a terminal. Writes the script's cpio.
         */
        public List<String> dockerRunArguments(String containerName, boolean interactive) {
            String image = GuestImage.tag();
            Accelerator accel = Accelerator.choose();
            List<String> args = new ArrayList<>(List.of("--rm", "--name", containerName, "--pull", "never",
                    "--network", "none", "-v", socketDir.toAbsolutePath() + ":" + GUEST_SOCKET_DIR));
            if (accel == Accelerator.KVM) {
                args.addAll(List.of("--device", "/dev/kvm"));
            }
            if (interactive) {
                args.add("-it");
            }
            args.add(image);
            args.addAll(prepare(accel));
            return args;
        }
    }

    private static QemuGuest start(Spec spec) {
        String image = GuestImage.tag();
        Accelerator accel = Accelerator.choose();
        List<String> command = spec.prepare(accel);
        GenericContainer<?> c = new GenericContainer<>(DockerImageName.parse(image))
                .withImagePullPolicy(imageName -> false) // local image only; no registry is reachable
                .withNetworkMode("none")
                .withFileSystemBind(spec.socketDir.toString(), GUEST_SOCKET_DIR)
                .withCommand(command.toArray(String[]::new))
                .withStartupCheckStrategy(new StartupCheckStrategy() {
                    @Override
                    public StartupStatus checkStartupState(DockerClient client, String id) {
                        return StartupStatus.SUCCESSFUL; // QEMU may exit quickly; we judge by its output
                    }
                })
                .waitingFor(new AbstractWaitStrategy() {
                    @Override
                    protected void waitUntilReady() {
                    }
                });
        if (accel == Accelerator.KVM) {
            c.withCreateContainerCmdModifier(cmd -> cmd.getHostConfig().withDevices(Device.parse("/dev/kvm")));
        }
        QemuGuest guest = new QemuGuest(spec.name, c);
        c.withLogConsumer(guest::onOutput);
        System.out.printf("[harness] starting guest %s (%s, %d vCPUs, %d MiB) from %s%n",
                spec.name, accel, spec.cpus, spec.memoryMiB, image);
        c.start();
        return guest;
    }

    private void onOutput(OutputFrame frame) {
        String text = frame.getUtf8String();
        if (text == null) {
            return;
        }
        console.append(text);
        synchronized (partialLine) {
            partialLine.append(text);
            int nl;
            while ((nl = partialLine.indexOf("\n")) >= 0) {
                String line = partialLine.substring(0, nl).replace("\r", "");
                partialLine.delete(0, nl + 1);
                System.out.println("[guest " + name + "] " + line);
            }
        }
    }

    /** Waits until the console contains {@code marker}; false on timeout or if QEMU exited first. */
    public boolean awaitOutput(String marker, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            if (console.indexOf(marker) >= 0) {
                return true;
            }
            if (!container.isRunning()) {
                return console.indexOf(marker) >= 0;
            }
            Thread.sleep(100);
        }
        return false;
    }

    /** Waits for {@code @@CHECKPOINT name} (see {@link GuestScripts#checkpoint}); fails with the console tail. */
    public void awaitCheckpoint(String name, Duration timeout) throws InterruptedException {
        if (!awaitOutput("@@CHECKPOINT " + name, timeout)) {
            throw new AssertionError("guest never reached checkpoint " + name + "; console tail:\n" + consoleTail(60));
        }
    }

    /**
     * Waits for the guest script to finish and QEMU to exit.
     *
     * @return the outcome; {@link Outcome#finished()} is false on timeout (the guest is then killed)
     */
    public Outcome awaitExit(Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline && container.isRunning()) {
            Thread.sleep(200);
        }
        boolean exited = !container.isRunning();
        if (!exited) {
            kill();
        }
        return outcome(exited);
    }

    /** True while QEMU (the container's process) runs. */
    public boolean isRunning() {
        return container.isRunning();
    }

    /** Kills QEMU at once (SIGKILL of the container's process), as a crash would. */
    public void kill() {
        if (container.isRunning()) {
            container.getDockerClient().killContainerCmd(container.getContainerId()).withSignal("KILL").exec();
        }
    }

    /** A {@code @@RESULT key=value} the (possibly still running) guest printed so far; fails if none. */
    public String result(String key) {
        for (String raw : console.toString().replace("\r", "").split("\n")) {
            Matcher m = RESULT.matcher(raw.strip());
            if (m.find() && m.group(1).equals(key)) {
                return m.group(2).strip();
            }
        }
        throw new AssertionError("guest did not report " + key + "; console tail:\n" + consoleTail(40));
    }

    /** What the console said so far. */
    public String console() {
        return console.toString();
    }

    /** The last {@code lines} console lines, for failure messages. */
    public String consoleTail(int lines) {
        String[] all = console.toString().replace("\r", "").split("\n");
        StringBuilder sb = new StringBuilder();
        for (int i = Math.max(0, all.length - lines); i < all.length; i++) {
            sb.append("  | ").append(all[i]).append('\n');
        }
        return sb.toString();
    }

    private Outcome outcome(boolean exited) {
        Map<String, String> results = new LinkedHashMap<>();
        Integer exit = null;
        for (String raw : console.toString().replace("\r", "").split("\n")) {
            String line = raw.strip();
            Matcher m = RESULT.matcher(line);
            if (m.find()) {
                results.put(m.group(1), m.group(2).strip());
            }
            Matcher e = EXIT.matcher(line);
            if (e.find()) {
                exit = Integer.parseInt(e.group(1));
            }
        }
        return new Outcome(exited, exit, results, consoleTail(60));
    }

    /**
     * @param finished   QEMU exited by itself before the timeout
     * @param scriptExit the test script's exit code, or null if it never finished
     * @param results    the {@code @@RESULT} key/value pairs, in order
     * @param tail       the console tail, for messages
     */
    public record Outcome(boolean finished, Integer scriptExit, Map<String, String> results, String tail) {
        public String get(String key) {
            String v = results.get(key);
            if (v == null) {
                throw new AssertionError("guest did not report " + key + "; console tail:\n" + tail);
            }
            return v;
        }

        public long getLong(String key) {
            return Long.parseLong(get(key).trim());
        }
    }

    @Override
    public void close() {
        try {
            kill();
        } catch (RuntimeException ignored) {
            // already gone
        }
        container.stop();
    }
}
