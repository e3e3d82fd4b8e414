package io.javadevices.vfiouser.cli;

import io.javadevices.vfiouser.protocol.MiniJson;
import io.javadevices.vfiouser.rpc.JsonWriter;
import io.javadevices.vfiouser.rpc.RpcClient;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code nvme-server rpc [--rpc-socket PATH] METHOD [KEY=VALUE ...]}: one call to a running server's control
 * plane. A value that is JSON (a number, {@code true}, {@code false}, {@code null}, an array, an object, a quoted
 * string) is sent as that JSON, anything else as a string; a repeated key sends an array. Prints the
 * {@code result} as indented JSON and exits 0, or the error's message on stderr and exits 1; 2 on bad usage.
 */
@Command(name = "rpc", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Calls a method of a running server's JSON-RPC control plane and prints the result.",
        footer = {"", "Example: nvme-server rpc --rpc-socket /run/nvme.rpc namespace_add controller=/run/vm1.sock "
                + "namespace=ram:1G"})
final class RpcClientCommand implements Callable<Integer> {
    static final String SOCKET_VARIABLE = "NVME_SERVER_RPC_SOCKET";

    @Option(names = "--rpc-socket", paramLabel = "PATH", defaultValue = "${env:" + SOCKET_VARIABLE + "}",
            description = "The server's --rpc-socket (default: the environment variable " + SOCKET_VARIABLE + ").")
    Path socket;

    @Parameters(index = "0", paramLabel = "METHOD", description = "e.g. controller_list, controller_add, "
            + "namespace_add, stats_get, server_shutdown.")
    String method;

    @Parameters(index = "1..*", paramLabel = "KEY=VALUE", description = "The method's parameters.")
    List<String> arguments = new ArrayList<>();

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        if (socket == null) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "Missing --rpc-socket=PATH (or the environment variable " + SOCKET_VARIABLE + ")");
        }
        Map<String, Object> params = params(spec.commandLine(), arguments);
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        Map<?, ?> response;
        try (RpcClient client = RpcClient.connect(socket)) {
            response = client.call(method, params);
        } catch (IOException | RuntimeException e) {
            err.println("nvme-server rpc: " + socket + ": " + e.getMessage());
            err.flush();
            return 1;
        }
        if (response.get("error") instanceof Map<?, ?> error) {
            err.println("nvme-server rpc: " + error.get("message") + " (error " + error.get("code") + ")");
            err.flush();
            return 1;
        }
        out.println(JsonWriter.pretty(response.get("result")));
        out.flush();
        return 0;
    }

    /** {@code KEY=VALUE} arguments as by-name parameters (see the class comment). */
    static Map<String, Object> params(CommandLine cli, List<String> arguments) {
        Map<String, Object> params = new LinkedHashMap<>();
        for (String argument : arguments) {
            int eq = argument.indexOf('=');
            if (eq <= 0) {
                throw new CommandLine.ParameterException(cli, "parameters are KEY=VALUE: '" + argument + "'");
            }
            String key = argument.substring(0, eq);
            Object value = value(argument.substring(eq + 1));
            if (!params.containsKey(key)) {
                params.put(key, value);
            } else if (params.get(key) instanceof Repeated list) {
                list.add(value);
            } else {
                Repeated list = new Repeated();
                list.add(params.get(key));
                list.add(value);
                params.put(key, list);
            }
        }
        return params;
    }

    /** The values of a repeated key (a list of its own type, so that a JSON array value is not mistaken for it). */
    private static final class Repeated extends ArrayList<Object> {
    }

    /** A JSON value as that value, anything else as the string itself. */
    static Object value(String text) {
        try {
            return MiniJson.parseStrict(text);
        } catch (IllegalArgumentException notJson) {
            return text;
        }
    }
}
