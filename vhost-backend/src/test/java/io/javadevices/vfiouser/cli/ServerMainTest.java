package io.javadevices.vfiouser.cli;

import io.javadevices.vfiouser.server.Limits;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class ServerMainTest {
    @TempDir
    Path dir;



    @Test
    void helpAndVersion() {
        CliRun help = CliRun.of("--help");
        assertEquals(0, help.code());
        for (String option : new String[] {"--socket", "--device", "--namespace", "--queues", "--dbbuf", "--socket-mode",
                "--stats-interval", "--max-dma-maps", "--max-mapped-bytes", "--max-message-bytes", "-o", "--list-devices",
                "--version"}) {
            assertTrue(help.out().contains(option), option);
        }
        int section = help.out().indexOf("Options of the nvme device");
        assertTrue(section > help.out().indexOf("--list-devices"), "the nvme plugin's options follow the server's:\n"
                + help.out());
        for (String option : new String[] {"--namespace=SPEC", "--queues=N", "--dbbuf=on|off"}) {
            assertTrue(help.out().indexOf(option, section) > section, option + " is listed as the plugin's:\n" + help.out());
        }
        CliRun version = CliRun.of("--version");
        assertEquals(0, version.code());
        assertTrue(version.out().contains("nvme-server"));
    }

    @Test
    void badUsageExitsWith2() {
        assertEquals(2, CliRun.of().code(), "--socket is required");
        assertEquals(2, CliRun.of("--socket", "/tmp/x.sock", "--bogus").code());
        assertEquals(2, CliRun.of("--socket", "/tmp/x.sock", "--socket-mode", "999").code());
        assertEquals(2, CliRun.of("--socket", "/tmp/x.sock", "--dbbuf", "maybe").code());
        assertEquals(2, CliRun.of("--socket", "/tmp/x.sock", "--namespace", "disk:1G").code());
        assertEquals(2, CliRun.of("--socket", "/tmp/x.sock", "--queues", "0").code());
        assertEquals(2, CliRun.of("--socket", "/tmp/x.sock", "--queues", "2", "--queues", "3").code(), "not repeatable");
        assertEquals(2, CliRun.of("--socket", "/tmp/x.sock", "--stats-interval", "-1").code());
    }

    @Test
    void runtimeFailureExitsWith1WithOneLine() {
        CliRun r = CliRun.of("--socket", dir.resolve("s.sock").toString(), "--device", "no-such-device");
        assertEquals(1, r.code());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().contains("no-such-device"), r.err());
        CliRun badOption = CliRun.of("--socket", dir.resolve("s.sock").toString(), "--device", "dma-copy", "-o", "x=1");
        assertEquals(1, badOption.code());
        assertTrue(badOption.err().contains("unknown option"), badOption.err());
    }

    @Test
    void listDevicesShowsThePlugins() {
        CliRun r = CliRun.of("--list-devices");
        assertEquals(0, r.code());
        assertTrue(r.out().contains("dma-copy"), r.out());
    }

    /** The client-controllable limits are CLI options; out-of-range values are usage errors (exit 2), not crashes. */
    @Test
    void limitOptions() {
        ServerMain main = new ServerMain();
        new CommandLine(main).parseArgs("--socket", "/tmp/s", "--max-dma-maps", "64", "--max-mapped-bytes", "8G",
                "--max-message-bytes", "2M");
        Limits limits = main.limits();
        assertEquals(64, limits.maxDmaMaps());
        assertEquals(8L << 30, limits.maxMappedBytes());
        assertEquals(2 << 20, limits.maxMessageBytes());
        ServerMain defaults = new ServerMain();
        new CommandLine(defaults).parseArgs("--socket", "/tmp/s");
        assertEquals(Limits.defaults(), defaults.limits());
        String sock = dir.resolve("s.sock").toString();
        assertEquals(2, CliRun.of("--socket", sock, "--max-dma-maps", "0").code());
        assertEquals(2, CliRun.of("--socket", sock, "--max-dma-maps", "65536").code());
        assertEquals(2, CliRun.of("--socket", sock, "--max-mapped-bytes", "-1").code());
        assertEquals(2, CliRun.of("--socket", sock, "--max-mapped-bytes", "lots").code());
        assertEquals(2, CliRun.of("--socket", sock, "--max-mapped-bytes", "99999999999T").code());
        assertEquals(2, CliRun.of("--socket", sock, "--max-message-bytes", "4096").code(), "below max_data_xfer_size + 64");
        assertEquals(2, CliRun.of("--socket", sock, "--max-message-bytes", "129M").code(), "above the 128 MiB cap");
        assertEquals(2, CliRun.of("--socket", sock, "--max-message-bytes", "3G").code());
        assertTrue(CliRun.of("--socket", sock, "--max-message-bytes", "3G").err().contains("bad limit"));
    }

    @Test
    void pluginOptionsAreAssembled() {
        String[] args = {"--socket", "/tmp/s", "--namespace", "ram:1G@4096", "--namespace", "file:/tmp/disk.img:2G",
                "--namespace", "null:64M", "--queues", "4", "--dbbuf", "off", "-o", "serial=abc", "-o", "queues=9"};
        CommandLine cli = ServerMain.commandLine(args);
        cli.parseArgs(args);
        Map<String, String> options = cli.<ServerMain>getCommand().pluginOptions();
        assertEquals("ram:1G@4096,file:/tmp/disk.img:2G,null:64M", options.get("namespaces"));
        assertEquals("4", options.get("queues"), "dedicated options win over -o");
        assertEquals("off", options.get("dbbuf"));
        assertEquals("abc", options.get("serial"));
    }
}
