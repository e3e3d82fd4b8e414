package io.javadevices.nvme;

import io.javadevices.pci.DeviceContext;
import io.javadevices.pci.PciDevice;
import io.javadevices.pci.PciDevicePlugin;
import io.javadevices.pci.PluginOption;

import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Loads the NVMe controller by name ({@code nvme}) through {@link java.util.ServiceLoader}, and gives a host's
 * command line the NVMe vocabulary: {@code --namespace}, {@code --queues}, {@code --dbbuf} (shortcuts for the
 * {@link NvmeOptions} keys, validated by {@link NvmeOptions#parse} itself) and a status line of IOPS, MMIO
 * doorbells per I/O and interrupts per I/O.
 */
public final class NvmePlugin implements PciDevicePlugin {
    private static final List<PluginOption> COMMAND_LINE = List.of(
            forward("--namespace", "SPEC", "namespaces", true,
                    "NVMe namespace, repeatable, in NSID order: null:SIZE, ram:SIZE or file:PATH[:SIZE], optionally "
                            + "@4096 for 4 KiB LBAs (e.g. ram:1G@4096). Default: one 1 GiB RAM namespace "
                            + "(plugin option namespaces)."),
            forward("--queues", "N", "queues", false,
                    "Maximum number of I/O queue pairs, 1..511 (default 4; plugin option queues)."),
            forward("--dbbuf", "on|off", "dbbuf", false,
                    "Doorbell Buffer Config (shadow doorbells and EventIdx, OACS bit 8) on or off (default on; "
                            + "plugin option dbbuf)."),
            forward("--pool", "ram:SIZE|dir:PATH:SIZE", "pool", false,
                    "NVM capacity pool guests create namespaces from (nvme create-ns): ram:SIZE (throwaway) or "
                            + "dir:PATH:SIZE (each namespace a sparse file in PATH, the table kept in PATH/pool.manifest "
                            + "across restarts; --namespace entries must then be file: and only seed an empty pool). "
                            + "Default: RAM exactly the size of the namespaces (plugin option pool)."),
            forward("--max-namespaces", "N", "max-namespaces", false,
                    "Identify NN and MNAN, NSIDs 1..N, 1..1024 (default 32, or the number of namespaces if more; "
                            + "plugin option max-namespaces)."),
            forward("--io-engine", "auto|io_uring|threads|sync", "io-engine", false,
                    "How each I/O queue keeps many commands in flight on file and NBD backends: io_uring, a few threads "
                            + "per queue, auto (default: io_uring if it can be set up, else threads; the choice is "
                            + "logged at start), or sync (one command at a time per queue; plugin option io-engine)."),
            forward("--io-threads", "N", "io-threads", false,
                    "Threads per I/O queue of the threads engine, 1..64 (default 4; plugin option io-threads)."));

    @Override
    public String name() {
        return "nvme";
    }

    @Override
    public String description() {
        return "NVMe 1.4 controller (ram/null/file namespaces, namespace management over a ram or directory pool,"
                + " Doorbell Buffer Config shadow doorbells)";
    }

    @Override
    public String optionsHelp() {
        return NvmeOptions.HELP;
    }

    @Override
    public PciDevice create(Map<String, String> options, DeviceContext context) {
        return new NvmeController(NvmeOptions.parse(options), context);
    }

    @Override
    public List<PluginOption> commandLineOptions() {
        return COMMAND_LINE;
    }

    /**
     * {@code stats: N IOPS, D.DD MMIO doorbells/IO, D.DD interrupts/IO}: I/O commands per second, and the
     * SQ tail plus CQ head doorbell writes that trapped (MMIO) and the interrupts signalled, per I/O command.
     * With Doorbell Buffer Config working, doorbells per I/O stay far below 1 (Linux
     * {@code nvme_dbbuf_update_and_check_event} rings only when the EventIdx asks for it).
     */
    @Override
    public String statusLine(Map<String, Long> before, Map<String, Long> now, Duration interval) {
        long io = delta(before, now, "io.commands");
        long doorbells = delta(before, now, "doorbell.mmio.sq") + delta(before, now, "doorbell.mmio.cq");
        long interrupts = delta(before, now, "interrupts");
        double seconds = interval.toNanos() / 1e9;
        return String.format(Locale.ROOT, "stats: %d IOPS, %.2f MMIO doorbells/IO, %.2f interrupts/IO",
                (long) (io / seconds), io == 0 ? 0.0 : (double) doorbells / io,
                io == 0 ? 0.0 : (double) interrupts / io) + backendStatus(now);
    }

    /**
     * {@code , N in flight, p99 M us} over the namespaces with asynchronous backends (file, nbd): operations in
     * flight now and the worst namespace's 99th-percentile latency since start; empty when there are none.
     */
    private static String backendStatus(Map<String, Long> now) {
        long inFlight = 0, p99 = 0;
        boolean any = false;
        for (Map.Entry<String, Long> e : now.entrySet()) {
            String key = e.getKey();
            if (key.startsWith("ns") && key.endsWith(".completed") && e.getValue() > 0) {
                any = true;
                String prefix = key.substring(0, key.length() - "completed".length());
                inFlight += now.getOrDefault(prefix + "inflight", 0L);
                p99 = Math.max(p99, now.getOrDefault(prefix + "latency.p99-us", 0L));
            }
        }
        return any ? String.format(Locale.ROOT, ", %d in flight, p99 %d us", inFlight, p99) : "";
    }

    /** A shortcut whose value is checked by the same parser {@link #create} uses, so the grammar lives there only. */
    private static PluginOption forward(String name, String label, String key, boolean repeatable, String help) {
        return new PluginOption(name, label, help, key, repeatable, value -> NvmeOptions.parse(Map.of(key, value)));
    }

    private static long delta(Map<String, Long> before, Map<String, Long> now, String key) {
        return now.getOrDefault(key, 0L) - before.getOrDefault(key, 0L);
    }
}
