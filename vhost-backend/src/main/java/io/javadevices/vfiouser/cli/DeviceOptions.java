package io.javadevices.vfiouser.cli;

import io.javadevices.pci.PciDevicePlugin;
import io.javadevices.pci.PluginOption;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Model.UsageMessageSpec;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The dedicated options the selected device plugin contributes ({@link PciDevicePlugin#commandLineOptions()}),
 * registered on the command line with picocli's programmatic API and forwarded, unchanged, as the plugin's
 * {@code key=value} options. The server itself knows none of them: with {@code --device nvme} the NVMe plugin
 * brings {@code --namespace}, {@code --queues} and {@code --dbbuf}; another plugin brings its own or none.
 *
 * <p>Because {@code --device} decides which options exist, the command line is parsed in two phases:
 * {@link #selectedDevice} pre-scans the arguments for {@code --device} (default {@code nvme}), the plugin's
 * options are registered, then picocli parses everything.
 */
final class DeviceOptions {
    static final String DEFAULT_DEVICE = "nvme";
    private static final String HELP_SECTION = "deviceOptions";

    private final PciDevicePlugin plugin;
    private final Map<PluginOption, OptionSpec> registered = new LinkedHashMap<>();

    /** No device options: the device is unknown, or this command line was built without a plugin. */
    static final DeviceOptions NONE = new DeviceOptions(null);

    private DeviceOptions(PciDevicePlugin plugin) {
        this.plugin = plugin;
    }

    /**
     * The device the arguments select, read the way picocli will read them ({@code --device NAME} or
     * {@code --device=NAME}), or {@link #DEFAULT_DEVICE}. A repeated {@code --device} is picocli's usage error
     * later; here the last one is taken.
     */
    static String selectedDevice(String... args) {
        String device = DEFAULT_DEVICE;
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--")) {
                break;
            }
            if (args[i].equals("--device") && i + 1 < args.length) {
                device = args[++i];
            } else if (args[i].startsWith("--device=")) {
                device = args[i].substring("--device=".length());
            }
        }
        return device;
    }

    /**
     * Registers {@code plugin}'s options on {@code spec}, after the server's own.
     *
     * @throws IllegalStateException if the plugin contributes a name the server already uses (a plugin bug)
     */
    static DeviceOptions register(PciDevicePlugin plugin, CommandSpec spec) {
        DeviceOptions options = new DeviceOptions(plugin);
        for (PluginOption option : plugin.commandLineOptions()) {
            if (spec.findOption(option.name()) != null) {
                throw new IllegalStateException("device plugin '" + plugin.name() + "' contributes " + option.name()
                        + ", which the server already has");
            }
            OptionSpec.Builder builder = OptionSpec.builder(option.name())
                    .paramLabel(option.valueLabel())
                    .description(option.help())
                    .arity("1");
            if (option.repeatable()) {
                builder.type(List.class).auxiliaryTypes(String.class);
            } else {
                builder.type(String.class);
            }
            OptionSpec optionSpec = builder.build();
            spec.addOption(optionSpec);
            options.registered.put(option, optionSpec);
        }
        return options;
    }

    /** The plugin these options belong to (null for {@link #NONE}). */
    PciDevicePlugin plugin() {
        return plugin;
    }

    /**
     * Shows the plugin's options in a section of their own after the server's options, headed with the
     * plugin's name, so {@code --help} tells which options the device brings.
     */
    void installHelp(CommandLine cli) {
        if (registered.isEmpty()) {
            return;
        }
        List<OptionSpec> own = new ArrayList<>(cli.getCommandSpec().options());
        own.removeAll(registered.values());
        List<OptionSpec> contributed = List.copyOf(registered.values());
        cli.getHelpSectionMap().put(UsageMessageSpec.SECTION_KEY_OPTION_LIST,
                help -> help.optionListExcludingGroups(own));
        cli.getHelpSectionMap().put(HELP_SECTION, help -> help.createHeading(
                "Options of the " + plugin.name() + " device (shortcuts for its -o KEY=VALUE options, which they "
                        + "override):%n")
                + help.optionListExcludingGroups(contributed));
        List<String> keys = new ArrayList<>(cli.getHelpSectionKeys());
        keys.add(keys.indexOf(UsageMessageSpec.SECTION_KEY_OPTION_LIST) + 1, HELP_SECTION);
        cli.setHelpSectionKeys(keys);
    }

    /**
     * The given device options as the plugin's {@code key=value} options: a repeatable option's values joined
     * with {@code ','}. Each value, and a joined list as a whole, must pass the plugin's own check.
     *
     * @throws CommandLine.ParameterException naming the option and quoting the plugin's reason
     */
    Map<String, String> forwarded(CommandLine cli) {
        CommandLine.ParseResult parsed = cli.getParseResult();
        Map<String, String> forwarded = new LinkedHashMap<>();
        registered.forEach((option, spec) -> {
            if (parsed == null || !parsed.hasMatchedOption(spec)) {
                return;
            }
            List<String> values = spec.stringValues();
            for (String value : values) {
                check(cli, option, value);
            }
            String joined = String.join(",", values);
            if (values.size() > 1) {
                check(cli, option, joined); // limits across values, e.g. the number of namespaces
            }
            forwarded.put(option.key(), joined);
        });
        return forwarded;
    }

    private static void check(CommandLine cli, PluginOption option, String value) {
        try {
            option.check(value);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(cli, "bad " + option.name() + " '" + value + "': " + e.getMessage());
        }
    }
}
