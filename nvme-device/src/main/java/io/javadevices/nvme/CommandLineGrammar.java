package io.javadevices.nvme;

import io.javadevices.nvme.backend.BlockBackend;
import io.javadevices.nvme.control.NamespaceGrammar;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * The control plane's {@link NamespaceGrammar}: {@link NvmeOptions}' own parser of the {@code namespaces} option
 * (the CLI's {@code --namespace}), one namespace at a time, and the controller's way of opening its backend.
 */
final class CommandLineGrammar implements NamespaceGrammar {
    private final Function<NvmeOptions.NamespaceSpec, BlockBackend> open;

    CommandLineGrammar(Function<NvmeOptions.NamespaceSpec, BlockBackend> open) {
        this.open = open;
    }

    @Override
    public Parsed parse(String text) {
        List<NvmeOptions.NamespaceSpec> specs = NvmeOptions.parseNamespaces(text);
        if (specs.size() != 1) {
            throw new IllegalArgumentException("one namespace expected, not a list of " + specs.size() + ": '" + text + "'");
        }
        return parsed(specs.getFirst());
    }

    private Parsed parsed(NvmeOptions.NamespaceSpec spec) {
        String location = switch (spec.kind()) {
            case "file" -> spec.path() + (spec.direct() ? "?direct=on" : "");
            case "nbd" -> spec.path();
            default -> null;
        };
        return new Parsed(spec.kind(), location, spec.size(), spec.lbaSize(), () -> open.apply(spec));
    }

    /** The command-line namespaces by the NSID they get (1, 2, ...: {@link NvmeOptions#namespaces}). */
    Map<Integer, Parsed> commandLine(NvmeOptions options) {
        Map<Integer, Parsed> m = new HashMap<>();
        for (int i = 0; i < options.namespaces().size(); i++) {
            m.put(i + 1, parsed(options.namespaces().get(i)));
        }
        return m;
    }
}
