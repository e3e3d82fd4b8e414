package io.javadevices.nvme.admin;

import io.javadevices.nvme.model.AdminIds;
import io.javadevices.nvme.pool.NvmPool;
import io.javadevices.nvme.queue.Sqe;
import io.javadevices.nvme.spec.Status;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Namespace Attachment (15h, NVMe 1.4 §5.22): CDW10 SEL 0h attach, 1h detach namespace NSID to or from the
 * controllers of the host's Controller List (4096 bytes, Figure 254: number of identifiers, then that many
 * 16-bit CNTLIDs). This subsystem has one controller ({@link AdminIds#CONTROLLER_ID}): a list naming any other,
 * none (QEMU {@code nvme_ns_attachment} refuses an empty list the same way), the same one twice, or more
 * identifiers than the 4096 bytes hold (2047) is Controller List Invalid. Attaching an attached namespace is
 * Namespace Already Attached, detaching a detached one Namespace Not Attached; NSID 0 or FFFFFFFFh Invalid
 * Namespace or Format (as QEMU), an NSID not allocated Invalid Field.
 */
final class NamespaceAttachmentCommand {
    static final int SEL_ATTACH = 0, SEL_DETACH = 1;
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);

    private final AdminContext context;
    private final AdminCommandDispatcher dispatcher;

    NamespaceAttachmentCommand(AdminContext context, AdminCommandDispatcher dispatcher) {
        this.context = context;
        this.dispatcher = dispatcher;
    }

    int execute(Sqe cmd) {
        int sel = cmd.cdw10() & 0xF;
        if (sel != SEL_ATTACH && sel != SEL_DETACH) {
            return Status.INVALID_FIELD;
        }
        int nsid = cmd.nsid();
        if (nsid == 0 || Integer.compareUnsigned(nsid, context.namespaceTable().maxNsid()) > 0) {
            return Status.INVALID_NAMESPACE_OR_FORMAT;
        }
        if (context.namespaceTable().allocated(nsid) == null) {
            return Status.INVALID_FIELD;
        }
        MemorySegment list = dispatcher.buffer(4096);
        int status = dispatcher.fromHost(cmd, list, 4096);
        if (status != Status.SUCCESS) {
            return status;
        }
        int count = Short.toUnsignedInt(list.get(U16, 0));
        if (count != 1 || Short.toUnsignedInt(list.get(U16, 2)) != AdminIds.CONTROLLER_ID) {
            return Status.CONTROLLER_LIST_INVALID; // count 0, 2..2047 (ours at most once), or beyond the buffer
        }
        try {
            context.pool().attach(nsid, sel == SEL_ATTACH);
            return Status.SUCCESS;
        } catch (NvmPool.Refusal r) {
            return r.status();
        }
    }
}
