package io.javadevices.nvme.admin;

import io.javadevices.nvme.dma.DataPointer;
import io.javadevices.nvme.model.AdminIds;
import io.javadevices.nvme.model.CopyLimits;
import io.javadevices.nvme.model.ErrorLog;
import io.javadevices.nvme.model.LbaFormats;
import io.javadevices.nvme.model.Namespace;
import io.javadevices.nvme.queue.Sqe;
import io.javadevices.nvme.spec.IdCtrl;
import io.javadevices.nvme.spec.IdNs;
import io.javadevices.nvme.spec.LbaFormat;
import io.javadevices.nvme.spec.Nvme;
import io.javadevices.nvme.spec.Status;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;

import static io.javadevices.pci.LittleEndian.INT;

/**
 * Identify (06h, NVMe 1.4 §5.15). CNS 00h namespace, 01h controller, 02h active namespace list,
 * 03h namespace identification descriptors, 11h namespace of an allocated NSID, and the namespace management
 * lists 10h, 12h, 13h ({@link NamespaceLists}); any other CNS → Invalid Field (NVMe 1.4 §5.15.1). Linux tolerates
 * that for the CNS 06h query of nvme_init_non_mdts_limits and the CNS 08h one of nvme_identify_ns_cs_indep: an
 * NVMe status there means "not supported", not a failed probe.
 */
final class IdentifyCommand {


    private final AdminContext context;
    private final AdminCommandDispatcher dispatcher;
    private final NamespaceLists lists;

    IdentifyCommand(AdminContext context, AdminCommandDispatcher dispatcher) {
        this.context = context;
        this.dispatcher = dispatcher;
        this.lists = new NamespaceLists(context);
    }

    /** CNS values answered (00h-03h, 10h-13h); others are Invalid Field. */
    static boolean supported(int cns) {
        return cns <= 0x03 || cns >= 0x10 && cns <= 0x13;
    }

    int execute(Sqe cmd) {
        int cns = cmd.cdw10() & 0xFF;
        MemorySegment data = dispatcher.buffer(4096);
        int status = switch (cns) {
            case 0x00 -> namespace(cmd.nsid(), data, false);
            case 0x01 -> controller(data);
            case 0x02 -> activeNamespaces(cmd.nsid(), data);
            case 0x03 -> descriptors(cmd.nsid(), data);
            case 0x10 -> lists.allocatedNamespaces(cmd.nsid(), data);
            case 0x11 -> namespace(cmd.nsid(), data, true);
            case 0x12 -> lists.attachedControllers(cmd.nsid(), cmd.cdw10() >>> 16, data);
            case 0x13 -> lists.controllers(cmd.cdw10() >>> 16, data);
            default -> Status.INVALID_FIELD;
        };
        return status != Status.SUCCESS ? status : dispatcher.toHost(cmd, data, 4096);
    }

    /** Identify Controller data structure, NVMe 1.4 §5.15, Figure 247 ({@link IdCtrl}). */
    private int controller(MemorySegment d) {
        var o = context.options();
        IdCtrl.VID.set(d, (short) Nvme.VENDOR_ID);
        IdCtrl.SSVID.set(d, (short) Nvme.VENDOR_ID);
        IdCtrl.SN.ascii(d, o.serial());
        IdCtrl.MN.ascii(d, o.model());
        IdCtrl.FR.ascii(d, AdminIds.FIRMWARE_REVISION);
        IdCtrl.RAB.set(d, (byte) 6);                                   // 2^6 = 64 commands
        IdCtrl.IEEE.put(d, new byte[] {0x4A, 0x44, 0x00}, (byte) 0);   // OUI, least significant byte first
        IdCtrl.MDTS.set(d, (byte) o.mdts());                           // 2^n × CAP.MPSMIN
        IdCtrl.CNTLID.set(d, (short) AdminIds.CONTROLLER_ID);
        IdCtrl.VER.set(d, Nvme.VERSION_1_4);
        IdCtrl.OAES.set(d, 1 << 8);                                    // Namespace Attribute notices
        IdCtrl.CNTRLTYPE.set(d, (byte) 1);                             // I/O controller
        IdCtrl.OACS.set(d, (short) dispatcher.commands().capabilities()); // from AdminOpcodes
        IdCtrl.ACL.set(d, (byte) 3);                                   // 0-based: 4 concurrent Aborts
        IdCtrl.AERL.set(d, (byte) AsyncEvents.AERL);
        IdCtrl.FRMW.set(d, (byte) 0x03);                               // slot 1 read-only, 1 slot
        IdCtrl.LPA.set(d, (byte) LogPageCommand.LPA);                  // effects log, extended data (NUMDU, LPO)
        // APSTA, KAS and HMPRE stay 0: no APST (0Ch), no Keep Alive Timer (0Fh), no Host Memory Buffer (0Dh).
        IdCtrl.ELPE.set(d, (byte) (ErrorLog.ENTRIES - 1));             // 0-based: 64 error log entries
        IdCtrl.NPSS.set(d, (byte) 0);                                  // 0-based: 1 power state
        IdCtrl.WCTEMP.set(d, (short) 0x157);                           // 343 K
        IdCtrl.CCTEMP.set(d, (short) 0x175);                           // 373 K
        IdCtrl.SQES.set(d, (byte) (Nvme.SQES_LOG2 << 4 | Nvme.SQES_LOG2)); // maximum and required: 64 bytes
        IdCtrl.CQES.set(d, (byte) (Nvme.CQES_LOG2 << 4 | Nvme.CQES_LOG2)); // maximum and required: 16 bytes
        // NN = MNAN = the NSIDs the table can hold (NVMe 1.4: MNAN ≤ NN). Linux scans with CNS 02h
        // (nvme_scan_ns_list), so a larger NN than there are namespaces costs nothing.
        IdCtrl.NN.set(d, context.namespaceTable().maxNsid());
        IdCtrl.MNAN.set(d, context.namespaceTable().maxNsid());
        IdCtrl.TNVMCAP_LOW.set(d, context.pool().capacity());          // bytes; the high 64 bits stay 0
        IdCtrl.UNVMCAP_LOW.set(d, context.pool().unallocated());
        // ONCS: the NVM commands' bits from NvmOpcodes, plus the two that are features (Save/Select, Timestamp).
        IdCtrl.ONCS.set(d, (short) (context.nvmCommands().capabilities() | FeatureCommands.ONCS_FEATURES));
        // OCFS bit 0: Copy takes source range entries of format 0 (the only one it accepts).
        IdCtrl.OCFS.set(d, (short) (context.nvmCommands().supports(Nvme.IO_COPY) ? 1 : 0));
        IdCtrl.FNA.set(d, (byte) 0);                                   // see FormatNvmCommand: per namespace, no crypto erase
        // VWC: bit 0 a volatile write cache (a namespace on a file: the host page cache), bits 2:1 = 11b Flush
        // accepts NSID FFFFFFFFh. ram:/null: only: no cache (nothing a flush could save), so Linux sends no
        // Flush and no FUA at all (nvme_update_ns_info_block sets BLK_FEAT_WRITE_CACHE | BLK_FEAT_FUA only with
        // VWC present; older kernels: blk_queue_write_cache(q, vwc, vwc) in nvme_set_queue_limits).
        IdCtrl.VWC.set(d, (byte) (context.features().writeCachePresent() ? 0x07 : 0));
        IdCtrl.SGLS.set(d, DataPointer.SGLS);                          // SGLs for I/O: what dma/SglWalker walks
        IdCtrl.SUBNQN.put(d, AdminIds.subsystemNqn(o.serial()).getBytes(StandardCharsets.US_ASCII), (byte) 0);
        IdCtrl.PSD0_MP.set(d, (short) 2500);                           // 25.00 W
        return Status.SUCCESS;
    }

    /**
     * Identify Namespace, NVMe 1.4 §5.15, Figure 245 ({@link IdNs}): the {@link LbaFormats} (512 and 4096 bytes,
     * no metadata), FLBAS the current one, sizes in its blocks. NSZE = NCAP = NUSE: no thin provisioning (NSFEAT
     * bit 0 = 0), and no other NSFEAT feature either (atomicity fields, DULBE, NGUID reuse, optimal I/O fields).
     * {@code allocated}: CNS 11h, any allocated namespace; else CNS 00h, an active one.
     */
    private int namespace(int nsid, MemorySegment d, boolean allocated) {
        Namespace ns = allocated ? context.namespaceTable().allocated(nsid) : context.namespace(nsid);
        if (ns == null) {
            if (nsid == Nvme.BROADCAST_NSID) {
                // The capabilities common to all namespaces (§5.15.2.1): the formats a new namespace can have,
                // which nvme-cli create-ns --block-size searches for the FLBAS it sends.
                lbaFormats(d);
                return Status.SUCCESS;
            }
            // An inactive (CNS 00h) or unallocated (CNS 11h) but valid NSID: a zero-filled structure (§5.15.2).
            boolean valid = nsid != 0 && Integer.compareUnsigned(nsid, context.namespaceTable().maxNsid()) <= 0;
            return valid ? Status.SUCCESS : Status.INVALID_NAMESPACE_OR_FORMAT;
        }
        IdNs.NSZE.set(d, ns.blocks());
        IdNs.NCAP.set(d, ns.blocks());
        IdNs.NUSE.set(d, ns.blocks());
        IdNs.FLBAS.set(d, (byte) LbaFormats.index(ns.lbaShift())); // bit 4 = 0: no metadata to place
        // DLFEAT bits 2:0 = 001b deallocated blocks read as zeroes, bit 3 Write Zeroes may deallocate.
        IdNs.DLFEAT.set(d, (byte) (ns.backend().deallocatedReadsZero() ? 0x09 : 0));
        if (context.nvmCommands().supports(Nvme.IO_COPY)) { // Copy limits (NVMe 2.0 NVM Command Set), enforced by Copy
            IdNs.MSSRL.set(d, (short) CopyLimits.maxSourceRangeLength(ns.lbaShift()));
            IdNs.MCL.set(d, CopyLimits.maxCopyLength(ns.lbaShift()));
            IdNs.MSRC.set(d, (byte) CopyLimits.MSRC);
        }
        IdNs.NMIC.set(d, (byte) ns.nmic());
        IdNs.NSATTR.set(d, (byte) (ns.backend().readOnly() ? 1 : 0)); // bit 0: write protected (Figure 245)
        IdNs.NVMCAP_LOW.set(d, ns.bytes());                            // bytes (Namespace Management)
        IdNs.NGUID.put(d, ns.ids().nguid(), (byte) 0);
        IdNs.EUI64.put(d, ns.ids().eui64(), (byte) 0);
        lbaFormats(d);
        return Status.SUCCESS;
    }

    /** NLBAF (0-based) and LBAF0..: every format without metadata, each the best relative performance. */
    private static void lbaFormats(MemorySegment d) {
        IdNs.NLBAF.set(d, (byte) (LbaFormats.count() - 1));
        for (int i = 0; i < LbaFormats.count(); i++) {
            long lbaf = IdNs.lbaf(i);
            LbaFormat.MS.set(d, lbaf, (short) 0);
            LbaFormat.LBADS.set(d, lbaf, (byte) LbaFormats.shift(i));
            LbaFormat.RP.set(d, lbaf, (byte) 0);
        }
    }

    /** Active Namespace ID list (CNS 02h): NSIDs greater than {@code nsid}, ascending, up to 1024. */
    private int activeNamespaces(int nsid, MemorySegment d) {
        if (nsid == 0xFFFF_FFFE || nsid == Nvme.BROADCAST_NSID) {
            return Status.INVALID_NAMESPACE_OR_FORMAT;
        }
        int at = 0;
        for (Namespace ns : context.namespaces()) {
            if (Integer.compareUnsigned(ns.nsid(), nsid) > 0 && at < 1024) {
                d.set(INT, 4L * at++, ns.nsid());
            }
        }
        return Status.SUCCESS;
    }

    /** Namespace Identification Descriptor list (CNS 03h, Figure 249): EUI64, NGUID, UUID. */
    private int descriptors(int nsid, MemorySegment d) {
        Namespace ns = context.namespace(nsid);
        if (ns == null) {
            return Status.INVALID_NAMESPACE_OR_FORMAT;
        }
        int at = put(d, 0, 1, ns.ids().eui64());
        at = put(d, at, 2, ns.ids().nguid());
        put(d, at, 3, ns.ids().uuid());
        return Status.SUCCESS;
    }

    private static int put(MemorySegment d, int at, int type, byte[] id) {
        d.set(ValueLayout.JAVA_BYTE, at, (byte) type);
        d.set(ValueLayout.JAVA_BYTE, at + 1, (byte) id.length);
        for (int i = 0; i < id.length; i++) {
            d.set(ValueLayout.JAVA_BYTE, at + 4 + i, id[i]);
        }
        return at + 4 + id.length;
    }
}
