package io.javadevices.pci;

import io.javadevices.pci.sample.DmaCopyPlugin;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The plugin's command-line contract: option descriptors and the default status line. */
class PluginOptionTest {
    private static PluginOption option(String name, String key) {
        return new PluginOption(name, "N", "help", key, false, value -> {
        });
    }

    @Test
    void optionNamesAreLongLowerCaseNamesAndKeysArePluginKeys() {
        assertEquals("--queues", option("--queues", "queues").name());
        assertEquals("--nap-us", option("--nap-us", "nap-us").name());
        for (String bad : new String[] {"queues", "-q", "--", "--Queues", "--a b", "--a=b", "---x"}) {
            assertThrows(IllegalArgumentException.class, () -> option(bad, "queues"), bad);
        }
        assertThrows(IllegalArgumentException.class, () -> option("--queues", " "));
        assertThrows(IllegalArgumentException.class, () -> option("--queues", "a=b"));
        assertThrows(IllegalArgumentException.class, () -> new PluginOption("--x", " ", "help", "x", false, v -> {
        }));
        assertThrows(NullPointerException.class, () -> new PluginOption("--x", "N", "help", "x", false, null));
    }

    @Test
    void checkRunsThePluginsValidator() {
        PluginOption positive = new PluginOption("--count", "N", "a positive number", "count", false, value -> {
            if (!value.matches("[1-9][0-9]*")) {
                throw new IllegalArgumentException("count must be positive: " + value);
            }
        });
        positive.check("12");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> positive.check("0"));
        assertEquals("count must be positive: 0", e.getMessage());
    }

    @Test
    void aPluginWithoutCommandLineVocabularyGetsTheDefaults() {
        PciDevicePlugin plugin = new DmaCopyPlugin();
        assertTrue(plugin.commandLineOptions().isEmpty());
        assertEquals("stats: copies +3, irqs +1",
                plugin.statusLine(Map.of("copies", 2L, "irqs", 5L, "idle", 7L),
                        Map.of("irqs", 6L, "copies", 5L, "idle", 7L), Duration.ofSeconds(1)),
                "changed counters by name; unchanged ones left out");
        assertEquals("stats: fresh +4", plugin.statusLine(Map.of(), Map.of("fresh", 4L), Duration.ofSeconds(1)),
                "a counter missing before counts from 0");
        assertEquals("stats: no counter changed",
                plugin.statusLine(Map.of("a", 1L), Map.of("a", 1L), Duration.ofSeconds(5)));
    }
}
