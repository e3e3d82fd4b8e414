package io.javadevices.vfiouser.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** --allow-uid parsing: numeric uid_t values, comma-separated or repeated; anything else is a usage error. */
class AllowUidOptionTest {
    @TempDir
    Path dir;

    private static int[] parse(String... args) {
        ServerMain main = new ServerMain();
        new CommandLine(main).parseArgs(args);
        return main.allowedUids();
    }

    @Test
    void goodValues() {
        assertNull(parse("--socket", "/tmp/s"), "not given: the server's default (own uid and root)");
        assertArrayEquals(new int[] {1000}, parse("--socket", "/tmp/s", "--allow-uid", "1000"));
        assertArrayEquals(new int[] {0, 1000, 1001}, parse("--socket", "/tmp/s", "--allow-uid", "0,1000",
                "--allow-uid", "1001"));
        assertArrayEquals(new int[] {-2}, parse("--socket", "/tmp/s", "--allow-uid", "4294967294"),
                "the largest uid_t that is a uid");
    }

    @Test
    void badValuesAreUsageErrorsWithOneLine() {
        String sock = dir.resolve("s.sock").toString();
        for (String bad : new String[] {"abc", "-1", "+5", "1.5", "4294967295", "4294967296", "99999999999", "1,,2",
                "1,x", " ", "\u0661"}) {
            StringWriter out = new StringWriter();
            StringWriter err = new StringWriter();
            CommandLine cli = ServerMain.commandLine();
            cli.setOut(new PrintWriter(out));
            cli.setErr(new PrintWriter(err));
            assertEquals(2, cli.execute("--socket", sock, "--allow-uid", bad), bad);
            assertTrue(err.toString().contains("--allow-uid takes numeric uids"), bad + ": " + err);
            assertFalse(err.toString().contains("Exception"), "no stack trace: " + err);
        }
    }

    @Test
    void helpDescribesTheOption() {
        StringWriter out = new StringWriter();
        CommandLine cli = ServerMain.commandLine();
        cli.setOut(new PrintWriter(out));
        assertEquals(0, cli.execute("--help"));
        assertTrue(out.toString().contains("--allow-uid=UID"), out.toString());
        assertTrue(out.toString().contains("SO_PEERCRED"), out.toString());
    }
}
