package io.javadevices.nvme.io;

import io.javadevices.nvme.admin.FeatureState;
import io.javadevices.nvme.model.ErrorLog;
import io.javadevices.nvme.model.GuestErrors;
import io.javadevices.nvme.model.Namespace;
import io.javadevices.pci.GuestMemory;

import java.util.List;

/**
 * What the NVM command set needs, as a snapshot taken when the controller is enabled: CC.MPS and MDTS
 * cannot change until the next CC.EN 0→1, and the namespaces are fixed, so the I/O path never asks the
 * controller (QEMU keeps the same values in NvmeCtrl, read per request).
 *
 * @param pageSize         host memory page size from CC.MPS (bytes)
 * @param maxTransferBytes MDTS in bytes
 */
public record IoContext(GuestMemory memory, List<Namespace> namespaces, int pageSize, long maxTransferBytes,
                        ErrorLog errorLog, GuestErrors guestErrors, FeatureState features) {
    public IoContext {
        namespaces = List.copyOf(namespaces);
    }

    /** Active namespace {@code nsid}, or null. */
    public Namespace namespace(int nsid) {
        return nsid >= 1 && nsid <= namespaces.size() ? namespaces.get(nsid - 1) : null;
    }
}
