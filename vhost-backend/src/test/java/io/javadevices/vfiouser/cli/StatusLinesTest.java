package io.javadevices.vfiouser.cli;

import io.javadevices.pci.DeviceContext;
import io.javadevices.pci.PciDevice;
import io.javadevices.pci.PciDevicePlugin;
import org.junit.jupiter.api.Test;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** --stats-interval: the plugin words each interval's line; the server names no counter. */
class StatusLinesTest {
    @Test
    void eachLineCoversTheCountersSinceThePreviousOne() {
        Deque<Map<String, Long>> snapshots = new ArrayDeque<>(List.of(
                Map.of("io.commands", 0L, "doorbell.mmio.sq", 0L, "interrupts", 0L),
                Map.of("io.commands", 500L, "doorbell.mmio.sq", 5L, "interrupts", 100L),
                Map.of("io.commands", 500L, "doorbell.mmio.sq", 5L, "interrupts", 100L)));
        StringWriter text = new StringWriter();
        StatusLines lines = new StatusLines(PciDevicePlugin.find("nvme").orElseThrow(), snapshots::removeFirst,
                Duration.ofSeconds(5), new PrintWriter(text));
        assertTrue(lines.printNext());
        assertTrue(lines.printNext());
        assertEquals(List.of("stats: 100 IOPS, 0.01 MMIO doorbells/IO, 0.20 interrupts/IO",
                "stats: 0 IOPS, 0.00 MMIO doorbells/IO, 0.00 interrupts/IO"), text.toString().lines().toList());
    }

    @Test
    void aFailingFormatterStopsTheLinesWithOneMessage() {
        PciDevicePlugin broken = new PciDevicePlugin() {
            @Override
            public String name() {
                return "broken";
            }

            @Override
            public String description() {
                return "formatter throws";
            }

            @Override
            public String optionsHelp() {
                return "";
            }

            @Override
            public PciDevice create(Map<String, String> options, DeviceContext context) {
                throw new UnsupportedOperationException();
            }

            @Override
            public String statusLine(Map<String, Long> before, Map<String, Long> now, Duration interval) {
                throw new IllegalStateException("no\nline");
            }
        };
        StringWriter text = new StringWriter();
        StatusLines lines = new StatusLines(broken, Map::of, Duration.ofSeconds(1), new PrintWriter(text));
        assertFalse(lines.printNext());
        assertEquals(List.of("nvme-server: no more stats lines, device plugin 'broken' failed: "
                + "java.lang.IllegalStateException: no line"), text.toString().lines().toList());
    }
}
