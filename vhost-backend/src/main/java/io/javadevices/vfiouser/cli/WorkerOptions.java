package io.javadevices.vfiouser.cli;

import io.javadevices.pci.CpuAffinity;
import io.javadevices.pci.PollingThreads;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/**
 * {@code --worker-threads N} and {@code --worker-cpus LIST}: the one pool of queue-polling threads of the process
 * ({@link PollingThreads}), shared by every controller it serves. A bad value is a usage error (exit 2).
 */
public final class WorkerOptions {
    /** Most threads: far above any sensible core count, low enough that a typo cannot start a million threads. */
    static final int MAX_THREADS = 1024;

    @Option(names = "--worker-threads", paramLabel = "N",
            description = "Threads polling the I/O queues of every controller, 1.." + MAX_THREADS
                    + " (default: the available processors). A controller's admin queue has a thread of its own.")
    Integer threads;

    @Option(names = "--worker-cpus", paramLabel = "LIST",
            description = "Pin the polling threads to these CPUs, e.g. 0-3,8 (thread i on the i-th CPU of the list, "
                    + "round robin). Default: not pinned.")
    String cpus;

    /** The thread count asked for, validated. */
    int threads(CommandLine cli) {
        int n = threads == null ? Runtime.getRuntime().availableProcessors() : threads;
        if (n < 1 || n > MAX_THREADS) {
            throw new CommandLine.ParameterException(cli,
                    "--worker-threads must be 1.." + MAX_THREADS + ": " + n);
        }
        return n;
    }

    /** The CPUs asked for, validated, or null (no pinning). */
    int[] cpus(CommandLine cli) {
        if (cpus == null) {
            return null;
        }
        try {
            return CpuAffinity.parse(cpus);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(cli, "--worker-cpus: " + e.getMessage());
        }
    }

    /** Starts the pool (threads {@code nvme-poll-N}). */
    PollingThreads create(CommandLine cli) {
        return PollingThreads.create("nvme-poll", threads(cli), cpus(cli));
    }
}
