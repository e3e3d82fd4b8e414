package io.javadevices.vfiouser.rpc;

import io.javadevices.pci.ConfigSpace;
import io.javadevices.pci.DeviceContext;
import io.javadevices.pci.DeviceControl;
import io.javadevices.pci.PciDevice;
import io.javadevices.pci.PciDevicePlugin;
import io.javadevices.pci.PluginOption;
import io.javadevices.pci.sample.DmaCopyDevice;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A device plugin ({@code recording}) whose device has a {@link DeviceControl} that records every call and answers
 * like a namespace-managing device would, for testing the host's routing of device methods without NVMe (plugin-api
 * contracts only). Its {@code namespaces} option is a comma-separated list of words; "bad" is refused.
 * With {@code flush=fail} its flush throws. {@code namespace_add} answers by the {@code namespace} parameter: {@code "bad"} INVALID_PARAMS, {@code "busy"}
 * REFUSED, {@code "unknown"} METHOD_NOT_FOUND, {@code "boom"} a RuntimeException, anything else {@code {"nsid":2}}.
 */
final class RecordingPlugin implements PciDevicePlugin {
    /** Every call to any recording device: method and params. */
    static final List<Map.Entry<String, Map<String, Object>>> CALLS = new ArrayList<>();

    @Override
    public String name() {
        return "recording";
    }

    @Override
    public String description() {
        return "test device that records control calls";
    }

    @Override
    public String optionsHelp() {
        return "namespaces=LIST  words";
    }

    @Override
    public List<PluginOption> commandLineOptions() {
        return List.of(new PluginOption("--namespace", "WORD", "a word", "namespaces", true, v -> {
            if (v.contains("bad")) {
                throw new IllegalArgumentException("'" + v + "' is a bad namespace");
            }
        }));
    }

    @Override
    public PciDevice create(Map<String, String> options, DeviceContext context) {
        for (String key : options.keySet()) {
            if (!key.equals("namespaces") && !key.equals("flush")) {
                throw new IllegalArgumentException("unknown option " + key);
            }
        }
        return new Device(new DmaCopyDevice(context), options.getOrDefault("namespaces", "default"),
                "fail".equals(options.get("flush")));
    }

    static final class Device implements PciDevice {
        private final DmaCopyDevice inner;
        private final String namespaces;
        private final boolean failFlush;
        private final DeviceControl control = new DeviceControl() {
            @Override
            public Set<String> methods() {
                return Set.of("namespace_list", "namespace_add", "namespace_remove", "namespace_resize");
            }

            @Override
            public Object call(String method, Map<String, Object> params) throws ControlException {
                synchronized (CALLS) {
                    CALLS.add(Map.entry(method, new LinkedHashMap<>(params)));
                }
                if (method.equals("namespace_list")) {
                    Map<String, Object> ns = new LinkedHashMap<>();
                    ns.put("nsid", 1L);
                    ns.put("spec", namespaces);
                    return Map.of("namespaces", List.of(ns));
                }
                Object which = params.get("namespace");
                if ("bad".equals(which)) {
                    throw ControlException.invalidParams("namespace: 'bad' is not a namespace");
                }
                if ("busy".equals(which)) {
                    throw ControlException.refused("NSID 2 is in use");
                }
                if ("unknown".equals(which)) {
                    throw new ControlException(ControlException.Kind.METHOD_NOT_FOUND, "no such thing");
                }
                if ("boom".equals(which)) {
                    throw new IllegalStateException("device bug");
                }
                Map<String, Object> result = new LinkedHashMap<>();
                result.put("nsid", 2L);
                result.put("method", method);
                return result;
            }
        };

        Device(DmaCopyDevice inner, String namespaces, boolean failFlush) {
            this.inner = inner;
            this.namespaces = namespaces;
            this.failFlush = failFlush;
        }

        @Override
        public void flush() throws java.io.IOException {
            if (failFlush) {
                throw new java.io.IOException("fdatasync failed: EIO");
            }
        }

        @Override
        public Map<String, io.javadevices.pci.Histogram> histograms() {
            return Map.of("ns1.latency", new io.javadevices.pci.Histogram(new long[] {1000, Long.MAX_VALUE},
                    new long[] {4, 1}, 9000));
        }

        @Override
        public ConfigSpace config() {
            return inner.config();
        }

        @Override
        public void reset() {
            inner.reset();
        }

        @Override
        public Map<String, Long> statistics() {
            return Map.of("sq1.commands", 5L, "sq10.commands", 7L, "sq2.commands", 6L, "ns1.reads", 3L,
                    "resets", 0L);
        }

        @Override
        public DeviceControl control() {
            return control;
        }

        @Override
        public void close() {
            inner.close();
        }
    }
}
