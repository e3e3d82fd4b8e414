package io.javadevices.qemutests.harness;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The {@code docker run} arguments of one guest, for {@code qemu-tests/try-it}: the harness's own image build
 * ({@link GuestImage}), accelerator probe ({@link Accelerator}) and QEMU command line
 * ({@link QemuGuest.Spec#dockerRunArguments}), so the first-run script boots exactly what the end-to-end tests
 * boot instead of keeping a copy of their docker and QEMU options.
 *
 * <pre>
 * java -cp TEST_CLASSPATH io.javadevices.qemutests.harness.GuestCommandLine \
 *     --dir DIR --name NAME --script FILE --vfio-user SOCKET_FILE_NAME [--cpus N] [--memory MIB] [--interactive]
 * </pre>
 * Prints the arguments one per line on stdout (none contains a line break: checked) and everything else
 * (image build progress, the accelerator choice) on stderr; exit status 1 with one message line on failure.
 * {@code -Djavadevices.accel=tcg|kvm} forces the accelerator as in the tests.
 */
public final class GuestCommandLine {
    private GuestCommandLine() {
    }

    public static void main(String[] args) {
        PrintStream result = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        System.setOut(System.err); // the harness reports progress on System.out: keep stdout for the arguments
        try {
            List<String> docker = dockerRunArguments(args);
            StringBuilder out = new StringBuilder();
            for (String arg : docker) {
                if (arg.indexOf('\n') >= 0) {
                    throw new IllegalStateException("a docker argument contains a line break: " + arg);
                }
                out.append(arg).append('\n');
            }
            result.print(out);
            result.flush();
        } catch (Throwable t) { // JUnit's fail()/assumeTrue() in GuestImage throw errors: report any the same way
            System.err.println("error: " + t.getMessage());
            System.exit(1);
        }
    }

    static List<String> dockerRunArguments(String[] args) throws Exception {
        Path dir = null;
        Path script = null;
        String name = null;
        String socket = null;
        int cpus = 2;
        int memoryMiB = 1024;
        boolean interactive = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--dir" -> dir = Path.of(value(args, ++i));
                case "--name" -> name = value(args, ++i);
                case "--script" -> script = Path.of(value(args, ++i));
                case "--vfio-user" -> socket = value(args, ++i);
                case "--cpus" -> cpus = Integer.parseInt(value(args, ++i));
                case "--memory" -> memoryMiB = Integer.parseInt(value(args, ++i));
                case "--interactive" -> interactive = true;
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        if (dir == null || name == null || script == null || socket == null) {
            throw new IllegalArgumentException("--dir, --name, --script and --vfio-user are required");
        }
        return new QemuGuest.Spec(name, dir).cpus(cpus).memoryMiB(memoryMiB).vfioUser(socket)
                .script(Files.readString(script)).dockerRunArguments(name, interactive);
    }

    private static String value(String[] args, int i) {
        if (i >= args.length) {
            throw new IllegalArgumentException(args[i - 1] + " needs a value");
        }
        return args[i];
    }
}
