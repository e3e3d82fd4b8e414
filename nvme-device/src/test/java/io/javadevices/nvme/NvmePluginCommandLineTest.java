package io.javadevices.nvme;

import io.javadevices.pci.PciDevicePlugin;
import io.javadevices.pci.PluginOption;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** What the nvme plugin gives a host's command line: its dedicated options and its status line. */
class NvmePluginCommandLineTest {
    private final PciDevicePlugin plugin = PciDevicePlugin.find("nvme").orElseThrow();

    private PluginOption option(String name) {
        return plugin.commandLineOptions().stream().filter(o -> o.name().equals(name)).findFirst().orElseThrow();
    }

    @Test
    void theDedicatedOptionsForwardToNvmeOptionKeys() {
        List<PluginOption> options = plugin.commandLineOptions();
        assertEquals(List.of("--namespace", "--queues", "--dbbuf", "--pool", "--max-namespaces", "--io-engine",
                        "--io-threads"),
                options.stream().map(PluginOption::name).toList());
        assertEquals(List.of("namespaces", "queues", "dbbuf", "pool", "max-namespaces", "io-engine", "io-threads"),
                options.stream().map(PluginOption::key).toList());
        assertEquals(List.of(true, false, false, false, false, false, false), options.stream().map(PluginOption::repeatable).toList(),
                "only --namespace is repeatable");
        assertEquals("SPEC", option("--namespace").valueLabel());
        assertEquals("on|off", option("--dbbuf").valueLabel());
    }

    @Test
    void valuesNvmeOptionsAcceptsAreAccepted() {
        for (String ns : new String[] {"null:8G", "file:/var/tmp/disk.img:4G@4096", "ram:1G@4096", "file:/tmp/a:b.img:1G@4096",
                "null:64M,ram:1M", "file:/var/tmp/disk.img:4G?direct=on@4096"}) {
            option("--namespace").check(ns);
        }
        option("--queues").check("4");
        option("--queues").check("511");
        option("--dbbuf").check("on");
        option("--dbbuf").check("off");
        option("--pool").check("ram:4G");
        option("--pool").check("dir:/var/lib/nvme-pool:100G");
        option("--pool").check("dir:/tmp/a:b:1G");
        option("--max-namespaces").check("1024");
        for (String engine : new String[] {"auto", "io_uring", "threads", "THREADS"}) {
            option("--io-engine").check(engine);
        }
        option("--io-threads").check("1");
        option("--io-threads").check("64");
        assertEquals("threads", NvmeOptions.parse(Map.of("io-engine", "Threads")).ioEngine());
        assertEquals("auto", NvmeOptions.defaults().ioEngine(), "default: io_uring if it can be set up, else threads");
        assertEquals(4, NvmeOptions.defaults().ioThreads());
    }

    @Test
    void malformedValuesAreRefusedWithTheParsersMessage() {
        for (String[] bad : new String[][] {
                {"--namespace", "disk:1G", "unknown namespace kind 'disk'"},
                {"--namespace", "ram:1G@1024", "LBA size must be @512 or @4096"},
                {"--namespace", "ram:", "bad size"},
                {"--namespace", "file:", "needs a path"},
                {"--namespace", "file:/var/tmp/disk.img?cache=none", "unknown file namespace option 'cache'"},
                {"--queues", "0", "queues must be in 1..511"},
                {"--queues", "many", "queues is not a number"},
                {"--dbbuf", "maybe", "dbbuf must be on or off"},
                {"--pool", "disk:1G", "pool must be ram:SIZE | dir:PATH:SIZE"},
                {"--pool", "dir:1G", "pool dir needs a path and a size"},
                {"--pool", "ram:1k", "pool size must be at least 4096 bytes"},
                {"--pool", "ram:lots", "bad size 'lots' in pool"},
                {"--max-namespaces", "0", "max-namespaces must be in 1..1024"},
                {"--max-namespaces", "1025", "max-namespaces must be in 1..1024"},
                {"--io-engine", "aio", "io-engine must be auto, io_uring, threads or sync"},
                {"--io-engine", "", "io-engine must be auto, io_uring, threads or sync"},
                {"--io-threads", "0", "io-threads must be in 1..64"},
                {"--io-threads", "65", "io-threads must be in 1..64"},
                {"--io-threads", "four", "io-threads is not a number"}}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> option(bad[0]).check(bad[1]),
                    bad[0] + " " + bad[1]);
            assertTrue(e.getMessage().contains(bad[2]), bad[0] + " " + bad[1] + ": " + e.getMessage());
            IllegalArgumentException same = assertThrows(IllegalArgumentException.class,
                    () -> NvmeOptions.parse(Map.of(option(bad[0]).key(), bad[1])));
            assertEquals(same.getMessage(), e.getMessage(), "one grammar: the option check is NvmeOptions.parse");
        }
    }

    @Test
    void statusLineShowsIopsDoorbellsAndInterruptsPerIo() {
        Map<String, Long> before = Map.of("io.commands", 1000L, "doorbell.mmio.sq", 10L, "doorbell.mmio.cq", 5L,
                "interrupts", 100L, "io.reads", 7L);
        Map<String, Long> now = Map.of("io.commands", 6000L, "doorbell.mmio.sq", 60L, "doorbell.mmio.cq", 55L,
                "interrupts", 1350L, "io.reads", 99L);
        assertEquals("stats: 1000 IOPS, 0.02 MMIO doorbells/IO, 0.25 interrupts/IO",
                plugin.statusLine(before, now, Duration.ofSeconds(5)));
        assertEquals("stats: 0 IOPS, 0.00 MMIO doorbells/IO, 0.00 interrupts/IO",
                plugin.statusLine(now, now, Duration.ofSeconds(1)), "an idle interval divides by no I/O");
        assertEquals("stats: 2 IOPS, 0.00 MMIO doorbells/IO, 0.00 interrupts/IO",
                plugin.statusLine(Map.of(), Map.of("io.commands", 12L), Duration.ofSeconds(5)),
                "whole IOPS, rounded down; missing counters count as 0");
    }
}
