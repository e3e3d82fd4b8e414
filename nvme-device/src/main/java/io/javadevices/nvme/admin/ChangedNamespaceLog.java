package io.javadevices.nvme.admin;

import io.javadevices.nvme.model.ChangedNamespaces;
import io.javadevices.nvme.spec.Status;

import java.lang.foreign.MemorySegment;

import static io.javadevices.pci.LittleEndian.INT;

/**
 * Log page 04h, Changed Namespace List (NVMe 1.4 §5.14.1.4): 1024 NSIDs, 4096 bytes; the changed NSIDs
 * ascending, zero-filled after the last, or FFFFFFFFh alone when more than 1024 changed.
 *
 * <p>A read with RAE = 0 clears what it reported and (its {@link LogPages} entry says Notice) unmasks the
 * notice. That is how Linux acknowledges the event: nvme_scan_work calls nvme_clear_changed_ns_log (the whole
 * page, NSID FFFFFFFFh, RAE = 0), then rescans every namespace itself. A change that arrived while the page was
 * being transferred stays listed and is notified again at once. QEMU's nvme_changed_nslist clears the list on
 * any read; here RAE = 1 leaves it intact, as it leaves the event masked.
 */
final class ChangedNamespaceLog {
    static final int LID = 0x04;
    static final int SIZE = ChangedNamespaces.MAX_ENTRIES * 4;

    private final AdminContext context;
    /** What the last render showed (admin worker only): the changes a successful read acknowledges. */
    private ChangedNamespaces.Snapshot rendered;

    ChangedNamespaceLog(AdminContext context) {
        this.context = context;
    }

    /** Writes the page into {@code d} (zeroed, at least {@link #SIZE} bytes). Any NSID: the list is the controller's. */
    int render(MemorySegment d) {
        rendered = context.asyncEvents().changedNamespaces().snapshot();
        int[] nsids = rendered.nsids();
        for (int i = 0; i < nsids.length; i++) {
            d.set(INT, 4L * i, nsids[i]);
        }
        return Status.SUCCESS;
    }

    /** The page was transferred with RAE = 0 and the notice unmasked: forget what it showed. */
    void acknowledged() {
        if (rendered == null) {
            return;
        }
        context.asyncEvents().changedNamespaces().clear(rendered.upTo());
        rendered = null;
        NamespaceChangeNotices.notifyHost(context.asyncEvents(), context.features());
    }
}
