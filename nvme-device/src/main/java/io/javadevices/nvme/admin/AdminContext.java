package io.javadevices.nvme.admin;

import io.javadevices.nvme.model.ErrorLog;
import io.javadevices.nvme.model.GuestErrors;
import io.javadevices.nvme.model.Namespace;
import io.javadevices.nvme.model.NamespaceTable;
import io.javadevices.nvme.pool.NvmPool;
import io.javadevices.nvme.queue.CompletionQueue;
import io.javadevices.nvme.queue.OpcodeTable;
import io.javadevices.nvme.queue.QueueStats;
import io.javadevices.nvme.queue.QueueTable;
import io.javadevices.pci.GuestMemory;

import java.util.List;

/**
 * What admin commands see of the controller, handed to the admin command set when the controller is
 * enabled (so {@code pageSize} is this enable's CC.MPS). The admin code never reaches the controller
 * itself: the queue table, the logs and the feature state are passed in.
 *
 * @param options          the options admin commands read
 * @param pageSize         host memory page size from CC.MPS (bytes)
 * @param maxTransferBytes MDTS in bytes
 * @param msixVectors      MSI-X table size (valid interrupt vectors are below it)
 * @param interrupts       delivers the completion of an asynchronous event
 * @param nvmCommands      the I/O command set's table (effects log, ONCS)
 * @param pool             the NVM capacity the namespaces come from (Namespace Management, TNVMCAP/UNVMCAP)
 */
public record AdminContext(AdminSettings options, GuestMemory memory, NamespaceTable namespaceTable, int pageSize,
                           long maxTransferBytes, int msixVectors, ErrorLog errorLog, GuestErrors guestErrors,
                           FeatureState features, AsyncEvents asyncEvents, QueueTable queues, Completions interrupts,
                           OpcodeTable<?> nvmCommands, NvmPool pool) {
    /** Interrupt delivery for completions the admin queue posts outside its worker's batch. */
    @FunctionalInterface
    public interface Completions {
        void posted(CompletionQueue cq, int posted, QueueStats stats);
    }

    /** Active (attached) namespace {@code nsid}, or null. */
    public Namespace namespace(int nsid) {
        return namespaceTable.attached(nsid);
    }

    /** The active namespaces now, NSID ascending (a snapshot). */
    public List<Namespace> namespaces() {
        return namespaceTable.attachedList();
    }

    public int maxIoQueues() {
        return queues.maxQueues();
    }
}
