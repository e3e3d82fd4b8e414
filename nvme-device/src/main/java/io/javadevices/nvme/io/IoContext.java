package io.javadevices.nvme.io;

import io.javadevices.nvme.admin.FeatureState;
import io.javadevices.nvme.model.ErrorLog;
import io.javadevices.nvme.model.GuestErrors;
import io.javadevices.nvme.model.Namespace;
import io.javadevices.nvme.model.NamespaceTable;
import io.javadevices.pci.GuestMemory;

import java.util.List;

/**
 * What the NVM command set needs, as a snapshot taken when the controller is enabled: CC.MPS and MDTS
 * cannot change until the next CC.EN 0→1, and namespaces are looked up in the lock-free {@link NamespaceTable},
 * so the I/O path never asks the controller (QEMU keeps the same values in NvmeCtrl, read per request).
 *
 * @param pageSize         host memory page size from CC.MPS (bytes)
 * @param maxTransferBytes MDTS in bytes
 */
public record IoContext(GuestMemory memory, NamespaceTable namespaceTable, int pageSize, long maxTransferBytes,
                        ErrorLog errorLog, GuestErrors guestErrors, FeatureState features) {
    /** Active (attached) namespace {@code nsid}, or null: lock-free, allocation-free. */
    public Namespace namespace(int nsid) {
        return namespaceTable.attached(nsid);
    }

    /** The active namespaces now, NSID ascending (a snapshot: namespaces can be attached and detached). */
    public List<Namespace> namespaces() {
        return namespaceTable.attachedList();
    }
}
