package io.javadevices.vfiouser.cli;

import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;

/** The CLI run in-process as a user would run it: its exit code and what it printed on stdout and stderr. */
record CliRun(int code, String out, String err) {

    static CliRun of(String... args) {
        CommandLine cli = ServerMain.commandLine(args);
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        int code = cli.execute(args);
        return new CliRun(code, out.toString(), err.toString());
    }
}
