package io.javadevices.vfiouser.cli;

import io.javadevices.pci.DeviceContext;
import io.javadevices.pci.PollingThreads;
import io.javadevices.pci.WorkerPool;
import io.javadevices.pci.sample.DmaCopyDevice;
import io.javadevices.vfiouser.server.VfioUserServer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.*;

/** {@code --worker-threads} / {@code --worker-cpus}, and the pool reaching the device through the server. */
class WorkerOptionsTest {
    @TempDir
    Path dir;

    private static WorkerOptions parse(String... args) {
        ServerMain main = new ServerMain();
        new CommandLine(main).parseArgs(args);
        return main.workers;
    }

    @Test
    void threadsAndCpusAreParsed() {
        CommandLine cli = new CommandLine(new ServerMain());
        WorkerOptions w = parse("--socket", "/tmp/s", "--worker-threads", "4", "--worker-cpus", "0-2,8");
        assertEquals(4, w.threads(cli));
        assertArrayEquals(new int[] {0, 1, 2, 8}, w.cpus(cli));
        WorkerOptions defaults = parse("--socket", "/tmp/s");
        assertEquals(Runtime.getRuntime().availableProcessors(), defaults.threads(cli));
        assertNull(defaults.cpus(cli), "not pinned unless asked");
        assertEquals(1024, parse("--worker-threads", "1024").threads(cli));
    }

    @Test
    void badValuesAreUsageErrors() {
        String sock = dir.resolve("s.sock").toString();
        for (String[] bad : new String[][] {{"--worker-threads", "0"}, {"--worker-threads", "1025"},
                {"--worker-threads", "-3"}, {"--worker-threads", "many"}, {"--worker-cpus", "3-1"},
                {"--worker-cpus", "x"}, {"--worker-cpus", ""}, {"--worker-cpus", "1,1"}, {"--worker-cpus", "4096"}}) {
            String[] args = {"--socket", sock, bad[0], bad[1]};
            CommandLine cli = ServerMain.commandLine(args);
            StringWriter err = new StringWriter();
            cli.setErr(new PrintWriter(err));
            cli.setOut(new PrintWriter(new StringWriter()));
            assertEquals(2, cli.execute(args), String.join(" ", bad));
            assertTrue(err.toString().contains(bad[0]) || err.toString().contains("Invalid value"),
                    String.join(" ", bad) + ": " + err);
        }
    }

    @Test
    void helpListsTheOptions() {
        CommandLine cli = ServerMain.commandLine("--help");
        StringWriter out = new StringWriter();
        cli.setOut(new PrintWriter(out));
        assertEquals(0, cli.execute("--help"));
        assertTrue(out.toString().contains("--worker-threads=N"), out.toString());
        assertTrue(out.toString().contains("--worker-cpus=LIST"), out.toString());
    }

    @Test
    void theServerHandsItsPoolToTheDeviceAndCountsItsThreads() throws Exception {
        AtomicReference<WorkerPool> seen = new AtomicReference<>();
        try (PollingThreads pool = PollingThreads.create("nvme-poll", 3, null);
             VfioUserServer server = VfioUserServer.builder().socket(dir.resolve("d.sock")).workers(pool)
                     .device((DeviceContext ctx) -> {
                         seen.set(ctx.workers());
                         return new DmaCopyDevice(ctx);
                     }).build()) {
            server.start();
            assertSame(pool, seen.get());
            assertEquals(3L, server.resources().get("workers.threads"));
        }
        try (VfioUserServer server = VfioUserServer.builder().socket(dir.resolve("e.sock"))
                .device(ctx -> {
                    seen.set(ctx.workers());
                    return new DmaCopyDevice(ctx);
                }).build()) {
            server.start();
            assertNull(seen.get(), "no pool given: the device makes its own");
            assertEquals(0L, server.resources().get("workers.threads"));
        }
    }
}
