package io.javadevices.nvme.admin;

import io.javadevices.nvme.model.AdminIds;
import io.javadevices.nvme.model.Namespace;
import io.javadevices.nvme.model.NamespaceTable;
import io.javadevices.nvme.spec.Nvme;
import io.javadevices.nvme.spec.Status;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

import static io.javadevices.pci.LittleEndian.INT;

/**
 * The Identify lists of namespace management (NVMe 1.4 §5.15.2, Figure 244): CNS 10h the allocated namespace
 * list, CNS 12h the controllers attached to a namespace, CNS 13h the controllers of the subsystem (CNS 11h,
 * Identify Namespace of an allocated NSID, is {@link IdentifyCommand}'s namespace page). A Controller List
 * (Figure 254) is a 16-bit count then the CNTLIDs ≥ CDW10.CNTID ascending; this subsystem has one controller.
 */
final class NamespaceLists {
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final AdminContext context;

    NamespaceLists(AdminContext context) {
        this.context = context;
    }

    /** CNS 10h: allocated NSIDs greater than {@code nsid}, ascending, up to 1024 (as CNS 02h for active ones). */
    int allocatedNamespaces(int nsid, MemorySegment d) {
        if (nsid == 0xFFFF_FFFE || nsid == Nvme.BROADCAST_NSID) {
            return Status.INVALID_NAMESPACE_OR_FORMAT;
        }
        int at = 0;
        for (Namespace ns : context.namespaceTable().allocatedList()) {
            if (Integer.compareUnsigned(ns.nsid(), nsid) > 0 && at < 1024) {
                d.set(INT, 4L * at++, ns.nsid());
            }
        }
        return Status.SUCCESS;
    }

    /**
     * CNS 12h: the controllers attached to {@code nsid}: ours if it is attached, none if it is allocated but
     * detached; an NSID out of range Invalid Namespace or Format, one not allocated Invalid Field (as QEMU
     * {@code nvme_identify_ctrl_list}).
     */
    int attachedControllers(int nsid, int cntid, MemorySegment d) {
        NamespaceTable table = context.namespaceTable();
        if (nsid == 0 || Integer.compareUnsigned(nsid, table.maxNsid()) > 0) {
            return Status.INVALID_NAMESPACE_OR_FORMAT;
        }
        if (table.allocated(nsid) == null) {
            return Status.INVALID_FIELD;
        }
        controllerList(d, cntid, table.isAttached(nsid));
        return Status.SUCCESS;
    }

    /** CNS 13h: every controller of the subsystem with CNTLID ≥ {@code cntid}: just this one. */
    int controllers(int cntid, MemorySegment d) {
        controllerList(d, cntid, true);
        return Status.SUCCESS;
    }

    private static void controllerList(MemorySegment d, int cntid, boolean ours) {
        if (ours && AdminIds.CONTROLLER_ID >= cntid) {
            d.set(U16, 0, (short) 1);
            d.set(U16, 2, (short) AdminIds.CONTROLLER_ID);
        }
    }
}
