package io.javadevices.pci;

import java.util.Objects;
import java.util.function.Consumer;
import java.util.regex.Pattern;

/**
 * A command-line option that a {@link PciDevicePlugin} contributes to a host's CLI: a named shortcut for
 * one of the plugin's {@code key=value} options. It lets a generic host (the vfio-user server's CLI) offer
 * {@code --namespace ram:1G} for the NVMe plugin while knowing nothing of NVMe.
 *
 * <p><b>Rules for hosts.</b> A host forwards values unchanged: a single-valued option sets {@link #key()} to
 * its value; a repeatable option sets it to its values joined with {@code ','} in command-line order (so a
 * plugin's list option keeps one syntax for both spellings). A dedicated option wins over the same key given
 * as a raw {@code key=value}. Before the device is created the host passes each value, and then the joined
 * value, to {@link #check(String)}, so a malformed value is a usage error; the plugin's
 * {@link PciDevicePlugin#create create} applies the same rules again, so the grammar lives in the plugin only.
 *
 * @param name       long option name with its two leading dashes, e.g. {@code --namespace}
 * @param valueLabel the value's placeholder in usage help, e.g. {@code SPEC}
 * @param help       the usage help text (sentences, no line breaks needed)
 * @param key        the plugin option the value is forwarded to, e.g. {@code namespaces}
 * @param repeatable whether the option may be given more than once
 * @param validator  throws {@link IllegalArgumentException}, with a message saying what is wrong, for a
 *                   value {@code create} would refuse; must not have side effects
 */
public record PluginOption(String name, String valueLabel, String help, String key, boolean repeatable,
                           Consumer<String> validator) {

    private static final Pattern LONG_NAME = Pattern.compile("--[a-z0-9][a-z0-9-]*");

    public PluginOption {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(valueLabel, "valueLabel");
        Objects.requireNonNull(help, "help");
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(validator, "validator");
        if (!LONG_NAME.matcher(name).matches()) {
            throw new IllegalArgumentException("option name must look like --lower-case-words: '" + name + "'");
        }
        if (key.isBlank() || key.contains("=")) {
            throw new IllegalArgumentException("plugin option key must be non-blank and have no '=': '" + key + "'");
        }
        if (valueLabel.isBlank()) {
            throw new IllegalArgumentException("value label of " + name + " is blank");
        }
    }

    /** Throws {@link IllegalArgumentException} if the plugin would refuse {@code value} for {@link #key()}. */
    public void check(String value) {
        validator.accept(value);
    }
}
