package io.javadevices.vfiouser.rpc;

import io.javadevices.pci.DeviceControl;
import io.javadevices.pci.DeviceControl.ControlException;
import io.javadevices.pci.PciDevicePlugin;
import io.javadevices.pci.PluginOption;
import io.javadevices.vfiouser.host.Controller;
import io.javadevices.vfiouser.host.ControllerHost;
import io.javadevices.vfiouser.host.ControllerSpec;
import io.javadevices.vfiouser.host.ControllerStats;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.function.Function;

/**
 * The control plane's methods (the table of the wire API): the host's own ({@code controller_*},
 * {@code stats_get}, {@code server_shutdown}) and, for any other method with a {@code controller} parameter,
 * routing to that controller's {@link DeviceControl} (the NVMe controller's {@code namespace_*}): the host knows
 * no device. Every call runs under the host's control lock, so calls are executed one at a time server-wide.
 */
public final class RpcMethods {
    private static final System.Logger LOG = System.getLogger(RpcMethods.class.getName());
    /** The device {@code controller_add} creates without a {@code device} parameter. */
    public static final String DEFAULT_DEVICE = "nvme";
    /** Device methods of the wire API: without a {@code controller} they get "missing parameter", not "not found". */
    private static final Set<String> DOCUMENTED_DEVICE_METHODS = Set.of("namespace_list", "namespace_add",
            "namespace_remove", "namespace_resize");
    /** The plugin option keys {@code controller_add}'s {@code namespaces} and {@code queues} stand for. */
    private static final String NAMESPACES_KEY = "namespaces", QUEUES_KEY = "queues";

    private final ControllerHost host;
    private volatile Function<List<Controller>, String> prometheus;

    public RpcMethods(ControllerHost host) {
        this.host = Objects.requireNonNull(host, "host");
    }

    /**
     * Lets {@code stats_get} answer {@code format=prometheus} with {@code render}'s text of the given controllers
     * (until set: INVALID_PARAMS "prometheus format not available yet").
     */
    public RpcMethods prometheus(Function<List<Controller>, String> render) {
        this.prometheus = render;
        return this;
    }

    /**
     * The answer to a call, and what to do once it has been sent.
     *
     * @param result     the {@code result} value
     * @param afterReply run after the response was written (e.g. the shutdown {@code server_shutdown} announces)
     */
    public record Answer(Object result, Runnable afterReply) {
        static Answer of(Object result) {
            return new Answer(result, () -> { });
        }
    }

    /** Runs one call under the control lock. */
    public Answer call(String method, Map<String, Object> params) throws RpcError {
        host.controlLock().lock();
        try {
            return switch (method) {
                case "controller_list" -> Answer.of(controllerList(new Params(method, params, Set.of())));
                case "controller_add" -> Answer.of(controllerAdd(new Params(method, params,
                        Set.of("socket", "device", "namespaces", "queues", "options"))));
                case "controller_remove" -> Answer.of(controllerRemove(new Params(method, params, Set.of("socket"))));
                case "stats_get" -> Answer.of(statsGet(new Params(method, params, Set.of("controller", "format"))));
                case "server_shutdown" -> {
                    new Params(method, params, Set.of());
                    yield new Answer(Map.of("shutting_down", true), host::requestShutdown);
                }
                default -> Answer.of(routeToDevice(method, params));
            };
        } finally {
            host.controlLock().unlock();
        }
    }

    private Map<String, Object> controllerList(Params p) {
        List<Object> list = new ArrayList<>();
        for (Controller c : host.controllers()) {
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("socket", c.socket().toString());
            entry.put("device", c.deviceName());
            entry.put("connected", c.connected());
            entry.put("clients_total", c.resources().getOrDefault("clients.total", 0L));
            Object namespaces = namespacesOf(c);
            if (namespaces != null) {
                entry.put("namespaces", namespaces);
            }
            list.add(entry);
        }
        return Map.of("controllers", list);
    }

    /** The device's own {@code namespace_list} answer's {@code namespaces}, or null if it has none. */
    private static Object namespacesOf(Controller c) {
        DeviceControl control = c.device().control();
        if (control == null || !control.methods().contains("namespace_list")) {
            return null;
        }
        try {
            Object answer = control.call("namespace_list", new LinkedHashMap<>());
            return answer instanceof Map<?, ?> m ? m.get("namespaces") : null;
        } catch (ControlException | RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "namespace_list of " + c.socket() + " failed: " + e.getMessage());
            return null;
        }
    }

    private Map<String, Object> controllerAdd(Params p) throws RpcError {
        Path socket = p.socket("socket");
        String deviceName = p.has("device") ? p.string("device", true) : DEFAULT_DEVICE;
        Map<String, String> options = p.stringMap("options");
        List<String> namespaces = p.strings(NAMESPACES_KEY);
        Long queues = p.integer(QUEUES_KEY);
        PciDevicePlugin plugin = host.plugin(deviceName);
        if (plugin == null) {
            throw RpcError.invalidParams("device: no device plugin named '" + Params.shown(deviceName)
                    + "' (available: " + String.join(", ", host.deviceNames()) + ")");
        }
        if (namespaces != null) {
            if (namespaces.isEmpty()) {
                throw RpcError.invalidParams("namespaces must not be empty (leave it out for the device's default)");
            }
            options.put(NAMESPACES_KEY, forwarded(plugin, NAMESPACES_KEY, namespaces));
        }
        if (queues != null) {
            options.put(QUEUES_KEY, forwarded(plugin, QUEUES_KEY, List.of(Long.toString(queues))));
        }
        Controller added;
        try {
            added = host.add(new ControllerSpec(socket, plugin.name(), options));
        } catch (ControlException e) {
            throw fromDevice(e);
        }
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("socket", added.socket().toString());
        result.put("device", added.deviceName());
        return result;
    }

    /**
     * {@code values} as the plugin's option {@code key}, joined with ',' as the command line forwards a repeatable
     * option, each value and the whole checked by the plugin ({@link PluginOption#check}).
     */
    private static String forwarded(PciDevicePlugin plugin, String key, List<String> values) throws RpcError {
        PluginOption option = plugin.commandLineOptions().stream().filter(o -> o.key().equals(key)).findFirst()
                .orElseThrow(() -> RpcError.invalidParams(key + ": the " + plugin.name() + " device has no "
                        + key + " option"));
        if (values.size() > 1 && !option.repeatable()) {
            throw RpcError.invalidParams(key + " takes one value for the " + plugin.name() + " device");
        }
        String joined = String.join(",", values);
        try {
            for (String value : values) {
                option.check(value);
            }
            option.check(joined);
        } catch (IllegalArgumentException e) {
            throw RpcError.invalidParams(key + ": " + e.getMessage());
        }
        return joined;
    }

    private Map<String, Object> controllerRemove(Params p) throws RpcError {
        Path socket = p.socket("socket");
        boolean flushed;
        try {
            flushed = host.remove(socket);
        } catch (ControlException e) {
            throw fromDevice(e);
        }
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("socket", ControllerHost.normalize(socket).toString());
        result.put("flushed", flushed);
        return result;
    }

    private Map<String, Object> statsGet(Params p) throws RpcError {
        List<Controller> controllers;
        if (p.has("controller")) {
            controllers = List.of(controller(p.socket("controller")));
        } else {
            controllers = host.controllers();
        }
        String format = p.has("format") ? p.string("format", true) : "json";
        switch (format) {
            case "json" -> {
                List<Object> list = new ArrayList<>();
                for (Controller c : controllers) {
                    list.add(ControllerStats.json(c));
                }
                return Map.of("controllers", list);
            }
            case "prometheus" -> {
                Function<List<Controller>, String> render = prometheus;
                if (render == null) {
                    throw RpcError.invalidParams("prometheus format not available yet");
                }
                return Map.of("text", render.apply(controllers));
            }
            default -> throw RpcError.invalidParams("format must be \"json\" or \"prometheus\", not \""
                    + Params.shown(format) + "\"");
        }
    }

    private Controller controller(Path socket) throws RpcError {
        Controller c = host.find(socket);
        if (c == null) {
            throw RpcError.invalidParams("no controller on socket " + ControllerHost.normalize(socket));
        }
        return c;
    }

    /** Any other method: the named controller's device answers it, if it lists it. */
    private Object routeToDevice(String method, Map<String, Object> params) throws RpcError {
        if (!params.containsKey("controller")) {
            if (DOCUMENTED_DEVICE_METHODS.contains(method)) {
                throw RpcError.invalidParams(method
                        + " needs the parameter \"controller\" (the controller's socket path)");
            }
            throw new RpcError(RpcError.METHOD_NOT_FOUND, "method not found: " + Params.shown(method));
        }
        Params p = new Params(method, Map.of("controller", params.get("controller")), Set.of("controller"));
        Controller c = controller(p.socket("controller"));
        DeviceControl control = c.device().control();
        if (control == null || !control.methods().contains(method)) {
            throw new RpcError(RpcError.METHOD_NOT_FOUND, "method not found: " + Params.shown(method) + " (the "
                    + c.deviceName() + " device on " + c.socket() + " does not offer it)");
        }
        Map<String, Object> forwarded = new LinkedHashMap<>(params);
        forwarded.remove("controller");
        try {
            return control.call(method, forwarded);
        } catch (ControlException e) {
            throw fromDevice(e);
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.ERROR, method + " on " + c.socket() + " failed", e);
            throw new RpcError(RpcError.INTERNAL_ERROR, "internal error: " + method + " failed: " + e);
        }
    }

    /** ControlException kinds → JSON-RPC codes (the wire API's table). */
    static RpcError fromDevice(ControlException e) {
        int code = switch (e.kind()) {
            case METHOD_NOT_FOUND -> RpcError.METHOD_NOT_FOUND;
            case INVALID_PARAMS -> RpcError.INVALID_PARAMS;
            case REFUSED -> RpcError.REFUSED;
        };
        return new RpcError(code, e.getMessage());
    }
}
