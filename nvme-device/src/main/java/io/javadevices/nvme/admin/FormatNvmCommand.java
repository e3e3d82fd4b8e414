package io.javadevices.nvme.admin;

import io.javadevices.nvme.model.LbaFormats;
import io.javadevices.nvme.model.Namespace;
import io.javadevices.nvme.queue.OpcodeTable;
import io.javadevices.nvme.queue.Sqe;
import io.javadevices.nvme.spec.Nvme;
import io.javadevices.nvme.spec.Status;

import java.io.IOException;
import java.util.List;

/**
 * Format NVM (80h, NVMe 1.4 §5.23): changes a namespace to one of the {@link LbaFormats}, optionally erasing
 * its user data. CDW10: LBAF 3:0, MSET 4, PI 7:5, PIL 8, SES 11:9.
 *
 * <ul>
 * <li>Checks, in QEMU nvme_format's order: NSID 0 or above NN → Invalid Namespace or Format; a valid NSID that
 *     is not attached → Invalid Field (§6.1.5); then SES 010b (Cryptographic Erase, FNA bit 2 = 0) and the
 *     reserved SES 011b-111b → Invalid Field; PI 100b-111b (reserved) → Invalid Field; an LBAF beyond NLBAF, any
 *     protection information (PI 001b-011b need metadata no format has, as QEMU nvme_format_check), MSET = 1 or
 *     PIL = 1 (settings of metadata there is none of) → Invalid Format; a namespace whose size is not a whole
 *     number of the new blocks → Invalid Format, before anything is changed.</li>
 * <li>SES 000b keeps the bytes (a read after 512 → 4096 returns what was written, regrouped); 001b User Data Erase
 *     writes zeroes over the whole namespace (RAM: the pages are dropped; a file: zeroes written, then synced),
 *     so every block reads zeroes afterwards, whatever DLFEAT says of deallocation. A failed erase is Internal
 *     Error and leaves the old format (the erase may be partial: the host formats again).</li>
 * <li>NSID FFFFFFFFh formats every attached namespace. FNA = 0: bit 0 clear, so a single namespace can be
 *     formatted alone (nvme-cli then sends the namespace's own NSID); bit 1 clear, so an erase covers only the
 *     namespaces being formatted.</li>
 * <li>The formatted namespace is a new {@link Namespace} put into the table ({@code NamespaceTable#replace});
 *     its listener records the change for the Namespace Attribute Changed event. Linux also rescans by itself:
 *     nvme_passthru_end sees NCC in the effects and runs nvme_queue_scan, whose nvme_update_ns_info gives the
 *     block device the new block size and capacity.</li>
 * <li>While it runs, I/O to the namespace gets Format In Progress (no DNR: the host may retry once the format
 *     is done). The effects say CSE 010b, so a host sends no I/O meanwhile (Linux freezes every queue in
 *     nvme_passthru_start); a command that got past the check before the format began finishes on the old
 *     {@link Namespace} with the block size it was submitted for.</li>
 * </ul>
 */
final class FormatNvmCommand {
    /** OACS bit 1: Format NVM supported. */
    static final int OACS_FORMAT_NVM = 1 << 1;
    /**
     * Commands Supported and Effects (NVMe 1.4 Figure 198): changes LBA content and the namespace's capabilities
     * (LBCC, NCC; not the inventory: no NIC), and no other command may run meanwhile (CSE 010b: NSID FFFFFFFFh
     * touches every namespace). Linux ORs LBCC | NCC | CSE into Format's entry anyway (nvme_init_known_nvm_effects,
     * nvme_known_admin_effects in older kernels), so its nvme_passthru_start freezes every queue.
     */
    static final int EFFECTS = OpcodeTable.LBCC | OpcodeTable.NCC | OpcodeTable.CSE_ANY;

    private static final int SES_NONE = 0, SES_USER_DATA = 1;
    private static final int PI_MAX_TYPE = 3;

    private final AdminContext context;

    FormatNvmCommand(AdminContext context) {
        this.context = context;
    }

    int execute(Sqe cmd) {
        int nsid = cmd.nsid();
        List<Namespace> targets;
        if (nsid == Nvme.BROADCAST_NSID) {
            targets = context.namespaces();
        } else if (nsid == 0 || Integer.compareUnsigned(nsid, context.namespaceTable().maxNsid()) > 0) {
            return Status.INVALID_NAMESPACE_OR_FORMAT;
        } else {
            Namespace ns = context.namespace(nsid);
            if (ns == null) {
                return Status.INVALID_FIELD; // a valid NSID, but not active on this controller
            }
            targets = List.of(ns);
        }
        int cdw10 = cmd.cdw10();
        int lbaf = cdw10 & 0xF;
        boolean mset = (cdw10 & 1 << 4) != 0;
        int pi = (cdw10 >>> 5) & 7;
        boolean pil = (cdw10 & 1 << 8) != 0;
        int ses = (cdw10 >>> 9) & 7;
        if (ses > SES_USER_DATA || pi > PI_MAX_TYPE) {
            return Status.INVALID_FIELD;
        }
        if (lbaf >= LbaFormats.count() || pi != 0 || mset || pil) {
            return Status.INVALID_FORMAT;
        }
        int shift = LbaFormats.shift(lbaf);
        for (Namespace ns : targets) {
            if (ns.backend().readOnly()) {
                return Status.NAMESPACE_WRITE_PROTECTED; // a format erases or reinterprets its data
            }
        }
        for (Namespace ns : targets) {
            if ((ns.backend().size() & ((1L << shift) - 1)) != 0) {
                return Status.INVALID_FORMAT;
            }
        }
        for (Namespace ns : targets) {
            int status = format(ns, shift, ses != SES_NONE, cmd);
            if (status != Status.SUCCESS) {
                return status;
            }
        }
        return Status.SUCCESS;
    }

    private int format(Namespace ns, int shift, boolean erase, Sqe cmd) {
        ns.setFormatting(true);
        if (erase) {
            try {
                ns.backend().writeZeroes(0, ns.backend().size());
                ns.backend().flush(); // an erase reported done must not come undone on a power loss
            } catch (IOException | RuntimeException e) {
                // The old format stays; the erase may be partial, so the host must format again.
                ns.setFormatting(false);
                context.errorLog().record(0, cmd.cid(), Status.INTERNAL_ERROR, 0, ns.nsid());
                return Status.INTERNAL_ERROR;
            }
        }
        context.namespaceTable().replace(ns.reformatted(shift));
        return Status.SUCCESS;
    }
}
