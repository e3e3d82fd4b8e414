package io.javadevices.vfiouser.cli;

import io.javadevices.nvme.NvmeOptions;
import io.javadevices.pci.DeviceContext;
import io.javadevices.pci.PciDevice;
import io.javadevices.pci.PciDevicePlugin;
import io.javadevices.pci.PluginOption;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The device's own options on the server's command line: {@code --device} selects the plugin, the plugin
 * contributes its options (two-phase parse), and their values reach the plugin unchanged. The README's and
 * the end-to-end tests' command lines are checked here against what the NVMe plugin then makes of them.
 */
class DeviceOptionsTest {
    private record Parsed(ServerMain main, Map<String, String> options, NvmeOptions nvme) {
    }

    private static Parsed parse(String... args) {
        CommandLine cli = ServerMain.commandLine(args);
        cli.parseArgs(args);
        ServerMain main = cli.getCommand();
        Map<String, String> options = main.pluginOptions();
        return new Parsed(main, options, NvmeOptions.parse(options));
    }

    private static String[] run(String... args) {
        CommandLine cli = ServerMain.commandLine(args);
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        cli.setOut(new PrintWriter(out));
        cli.setErr(new PrintWriter(err));
        return new String[] {Integer.toString(cli.execute(args)), out.toString(), err.toString()};
    }

    @Test
    void readmeQuickStartDefaultsToOneRamNamespace() {
        Parsed p = parse("--socket", "/tmp/nvme.sock");
        assertEquals(Map.of(), p.options());
        assertEquals(List.of(new NvmeOptions.NamespaceSpec("ram", 1L << 30, null, 512)), p.nvme().namespaces());
    }

    @Test
    void readmeTwoNamespacesFourQueuesAndStats() {
        Parsed p = parse("--socket", "/tmp/nvme.sock", "--namespace", "null:8G", "--namespace",
                "file:/var/tmp/disk.img:4G@4096", "--queues", "4", "--stats-interval", "5");
        assertEquals(Map.of("namespaces", "null:8G,file:/var/tmp/disk.img:4G@4096", "queues", "4"), p.options());
        assertEquals(List.of(new NvmeOptions.NamespaceSpec("null", 8L << 30, null, 512),
                new NvmeOptions.NamespaceSpec("file", 4L << 30, "/var/tmp/disk.img", 4096)), p.nvme().namespaces());
        assertEquals(4, p.nvme().queues());
        assertEquals(5, p.main().statsInterval);
    }

    @Test
    void readmeDbbufOnOffAndPolledDoorbells() {
        assertTrue(parse("--socket", "/s", "--dbbuf", "on").nvme().dbbuf());
        assertFalse(parse("--socket", "/s", "--dbbuf", "off").nvme().dbbuf());
        Parsed polled = parse("--socket", "/s", "-o", "doorbells=polled");
        assertEquals(Map.of("doorbells", "polled"), polled.options());
        assertTrue(polled.nvme().polledDoorbells());
        Parsed equalsForm = parse("--socket=/s", "--device=nvme", "--namespace=ram:1G@4096", "--queues=2", "--dbbuf=off");
        assertEquals(Map.of("namespaces", "ram:1G@4096", "queues", "2", "dbbuf", "off"), equalsForm.options());
    }

    @Test
    void endToEndTestCommandLinesStillParse() {
        // qemu-tests ServerCrashIT starts the packaged server with these.
        Parsed first = parse("--socket", "/s", "--namespace", "file:/tmp/d/disk.img:64M", "--stats-interval", "1");
        assertEquals(64L << 20, first.nvme().namespaces().getFirst().size());
        Parsed second = parse("--socket", "/s", "--namespace", "file:/tmp/d/disk.img", "--max-dma-maps", "64",
                "--max-mapped-bytes", "2G", "--max-message-bytes", "2M");
        assertEquals(0, second.nvme().namespaces().getFirst().size(), "size from the file");
        assertEquals(64, second.main().limits().maxDmaMaps());
    }

    @Test
    void aNamespaceTheParserRefusesIsAUsageErrorWithItsReason() {
        String[] r = run("--socket", "/tmp/x.sock", "--namespace", "null:8G", "--namespace", "disk:1G");
        assertEquals("2", r[0]);
        assertTrue(r[2].contains("bad --namespace 'disk:1G': unknown namespace kind 'disk'"), r[2]);
        String[] dbbuf = run("--socket", "/tmp/x.sock", "--dbbuf", "maybe");
        assertTrue(dbbuf[2].contains("bad --dbbuf 'maybe': option dbbuf must be on or off"), dbbuf[2]);
        String[] tooMany = run(Stream.concat(Stream.of("--socket", "/tmp/x.sock"),
                Stream.generate(() -> List.of("--namespace", "null:1M")).limit(257).flatMap(List::stream))
                .toArray(String[]::new));
        assertEquals("2", tooMany[0], "the joined list is checked too: " + tooMany[2]);
        assertTrue(tooMany[2].contains("at most 256 namespaces"), tooMany[2]);
    }

    @Test
    void anotherDeviceHasNoNvmeOptions() {
        String[] help = run("--device", "dma-copy", "--help");
        assertEquals("0", help[0]);
        assertFalse(help[1].contains("--namespace"), help[1]);
        assertFalse(help[1].contains("Options of the"), help[1]);
        String[] rejected = run("--socket", "/tmp/x.sock", "--device=dma-copy", "--queues", "4");
        assertEquals("2", rejected[0]);
        assertTrue(rejected[2].contains("Unknown options: '--queues'"), rejected[2]);
    }

    @Test
    void listDevicesNamesEachPluginsCommandLineOptions() {
        String[] r = run("--list-devices");
        assertEquals("0", r[0]);
        assertTrue(r[1].contains("command-line options (with --device nvme): --namespace=SPEC, --queues=N, --dbbuf=on|off"),
                r[1]);
    }

    @Test
    void theDeviceIsPreScannedTheWayPicocliReadsIt() {
        assertEquals("nvme", DeviceOptions.selectedDevice());
        assertEquals("nvme", DeviceOptions.selectedDevice("--socket", "/s", "--queues", "4"));
        assertEquals("dma-copy", DeviceOptions.selectedDevice("--socket", "/s", "--device", "dma-copy"));
        assertEquals("dma-copy", DeviceOptions.selectedDevice("--device=dma-copy", "--socket", "/s"));
        assertEquals("nvme", DeviceOptions.selectedDevice("--device"), "no value: picocli reports it");
        assertEquals("nvme", DeviceOptions.selectedDevice("--", "--device", "x"), "after --, not an option");
    }

    @Test
    void parsingOtherArgumentsThanTheCommandLineWasBuiltForIsRefused() {
        CommandLine cli = ServerMain.commandLine("--socket", "/s");
        cli.parseArgs("--socket", "/s", "--device", "dma-copy");
        ServerMain main = cli.getCommand();
        assertThrows(CommandLine.ParameterException.class, main::pluginOptions);
    }

    @Test
    void aPluginOptionThatClashesWithTheServersIsRefused() {
        PciDevicePlugin clashing = new PciDevicePlugin() {
            @Override
            public String name() {
                return "clash";
            }

            @Override
            public String description() {
                return "contributes --socket";
            }

            @Override
            public String optionsHelp() {
                return "";
            }

            @Override
            public PciDevice create(Map<String, String> options, DeviceContext context) {
                throw new UnsupportedOperationException();
            }

            @Override
            public List<PluginOption> commandLineOptions() {
                return List.of(new PluginOption("--socket", "PATH", "mine", "socket", false, v -> {
                }));
            }
        };
        CommandLine.Model.CommandSpec spec = CommandLine.Model.CommandSpec.forAnnotatedObject(new ServerMain());
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> DeviceOptions.register(clashing, spec));
        assertTrue(e.getMessage().contains("'clash' contributes --socket"), e.getMessage());
    }

    /** The generic server is compiled against plugin-api only: nvme-device is a runtime dependency. */
    @Test
    void theServersMainCodeImportsNoDevice() throws IOException {
        Path main = Path.of("src/main/java");
        assertTrue(Files.isDirectory(main), "run from the vhost-backend module directory");
        try (Stream<Path> files = Files.walk(main)) {
            List<Path> offenders = files.filter(f -> f.toString().endsWith(".java")).filter(f -> {
                try {
                    return Files.readString(f).contains("io.javadevices.nvme");
                } catch (IOException ex) {
                    throw new java.io.UncheckedIOException(ex);
                }
            }).toList();
            assertEquals(List.of(), offenders);
        }
    }
}
