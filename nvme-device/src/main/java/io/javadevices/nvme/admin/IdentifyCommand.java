package io.javadevices.nvme.admin;

import io.javadevices.nvme.model.AdminIds;
import io.javadevices.nvme.model.Namespace;
import io.javadevices.nvme.queue.Sqe;
import io.javadevices.nvme.spec.Nvme;
import io.javadevices.nvme.spec.Status;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;

import static io.javadevices.nvme.spec.LittleEndian.SHORT;
import static io.javadevices.nvme.spec.LittleEndian.INT;
import static io.javadevices.nvme.spec.LittleEndian.LONG;

/**
 * Identify (06h, NVMe 1.4 §5.15). CNS 00h namespace, 01h controller, 02h active namespace list,
 * 03h namespace identification descriptors; any other CNS → Invalid Field (Linux nvme_identify_ns_descs
 * and the CNS 06h probe tolerate that).
 */
final class IdentifyCommand {


    private final AdminContext context;
    private final AdminCommandDispatcher dispatcher;

    IdentifyCommand(AdminContext context, AdminCommandDispatcher dispatcher) {
        this.context = context;
        this.dispatcher = dispatcher;
    }

    /** CNS values answered (00h-03h); others are Invalid Field. */
    static boolean supported(int cns) {
        return cns <= 0x03;
    }

    int execute(Sqe cmd) {
        int cns = cmd.cdw10() & 0xFF;
        MemorySegment data = dispatcher.buffer(4096);
        int status = switch (cns) {
            case 0x00 -> namespace(cmd.nsid(), data);
            case 0x01 -> controller(data);
            case 0x02 -> activeNamespaces(cmd.nsid(), data);
            case 0x03 -> descriptors(cmd.nsid(), data);
            default -> Status.INVALID_FIELD;
        };
        return status != Status.SUCCESS ? status : dispatcher.toHost(cmd, data, 4096);
    }

    private static void ascii(MemorySegment data, int offset, int length, String text) {
        byte[] bytes = text.getBytes(StandardCharsets.US_ASCII);
        for (int i = 0; i < length; i++) {
            data.set(ValueLayout.JAVA_BYTE, offset + i, i < bytes.length ? bytes[i] : (byte) ' ');
        }
    }

    /** Identify Controller data structure, NVMe 1.4 Figure 247. */
    private int controller(MemorySegment d) {
        var o = context.options();
        d.set(SHORT, 0, (short) Nvme.VENDOR_ID);            // VID
        d.set(SHORT, 2, (short) Nvme.VENDOR_ID);            // SSVID
        ascii(d, 4, 20, o.serial());                                  // SN
        ascii(d, 24, 40, o.model());                                  // MN
        ascii(d, 64, 8, AdminIds.FIRMWARE_REVISION);                  // FR
        d.set(ValueLayout.JAVA_BYTE, 72, (byte) 6);                   // RAB: 64 commands
        d.set(ValueLayout.JAVA_BYTE, 73, (byte) 0x4A);                // IEEE OUI (LE)
        d.set(ValueLayout.JAVA_BYTE, 74, (byte) 0x44);
        d.set(ValueLayout.JAVA_BYTE, 75, (byte) 0x00);
        d.set(ValueLayout.JAVA_BYTE, 77, (byte) o.mdts());            // MDTS (2^n × MPSMIN)
        d.set(SHORT, 78, (short) AdminIds.CONTROLLER_ID);             // CNTLID
        d.set(INT, 80, Nvme.VERSION_1_4);                             // VER
        d.set(INT, 92, 1 << 8);                                       // OAES: namespace attribute notices
        d.set(ValueLayout.JAVA_BYTE, 111, (byte) 1);                  // CNTRLTYPE: I/O controller
        d.set(SHORT, 256, (short) dispatcher.commands().capabilities()); // OACS, from AdminOpcodes
        d.set(ValueLayout.JAVA_BYTE, 258, (byte) 3);                  // ACL: 4 aborts
        d.set(ValueLayout.JAVA_BYTE, 259, (byte) AsyncEvents.AERL);   // AERL
        d.set(ValueLayout.JAVA_BYTE, 260, (byte) 0x03);               // FRMW: slot 1 read-only, 1 slot
        d.set(ValueLayout.JAVA_BYTE, 261, (byte) 0x02);               // LPA: Commands Supported and Effects log
        d.set(ValueLayout.JAVA_BYTE, 262, (byte) (64 - 1));           // ELPE: 64 error log entries
        d.set(ValueLayout.JAVA_BYTE, 263, (byte) 0);                  // NPSS: 1 power state
        d.set(SHORT, 266, (short) 0x157);                             // WCTEMP 343 K
        d.set(SHORT, 268, (short) 0x175);                             // CCTEMP 373 K
        d.set(ValueLayout.JAVA_BYTE, 512, (byte) 0x66);               // SQES
        d.set(ValueLayout.JAVA_BYTE, 513, (byte) 0x44);               // CQES
        d.set(INT, 516, context.namespaces().size());              // NN
        d.set(SHORT, 520, (short) context.nvmCommands().capabilities()); // ONCS, from the NVM table
        // VWC: bit 0 a volatile write cache (a namespace on a file: the host page cache), bits 2:1 = 11b Flush
        // accepts NSID FFFFFFFFh. ram:/null: only: no cache (nothing a flush could save), so Linux sends no
        // Flush and no FUA at all (nvme_update_ns_info_block sets BLK_FEAT_WRITE_CACHE | BLK_FEAT_FUA only with
        // VWC present; older kernels: blk_queue_write_cache(q, vwc, vwc) in nvme_set_queue_limits).
        d.set(ValueLayout.JAVA_BYTE, 525, (byte) (context.features().writeCachePresent() ? 0x07 : 0));
        d.set(INT, 536, 0);                                           // SGLS: no SGLs
        ascii(d, 768, 256, "");
        byte[] nqn = AdminIds.subsystemNqn(o.serial()).getBytes(StandardCharsets.US_ASCII);
        for (int i = 0; i < 256; i++) {
            d.set(ValueLayout.JAVA_BYTE, 768 + i, i < nqn.length ? nqn[i] : 0);  // SUBNQN, NUL padded
        }
        d.set(SHORT, 2048, (short) 2500);                             // PSD0 MP: 25.00 W
        return Status.SUCCESS;
    }

    /** Identify Namespace, NVMe 1.4 Figure 245 (one LBA format, no metadata). */
    private int namespace(int nsid, MemorySegment d) {
        Namespace ns = context.namespace(nsid);
        if (ns == null) {
            if (nsid == Nvme.BROADCAST_NSID) {
                d.set(INT, 128, 9 << 16); // LBAF0 of the common format: 512-byte LBAs
                return Status.SUCCESS;
            }
            return Status.INVALID_NAMESPACE_OR_FORMAT;
        }
        d.set(LONG, 0, ns.blocks());                                  // NSZE
        d.set(LONG, 8, ns.blocks());                                  // NCAP
        d.set(LONG, 16, ns.blocks());                                 // NUSE
        d.set(ValueLayout.JAVA_BYTE, 25, (byte) 0);                   // NLBAF: 1 format
        d.set(ValueLayout.JAVA_BYTE, 26, (byte) 0);                   // FLBAS: format 0
        d.set(ValueLayout.JAVA_BYTE, 33, (byte) (ns.backend().deallocatedReadsZero() ? 0x09 : 0)); // DLFEAT
        byte[] nguid = AdminIds.nguid(context.options().serial(), nsid);
        for (int i = 0; i < 16; i++) {
            d.set(ValueLayout.JAVA_BYTE, 104 + i, nguid[i]);          // NGUID
        }
        byte[] eui = AdminIds.eui64(context.options().serial(), nsid);
        for (int i = 0; i < 8; i++) {
            d.set(ValueLayout.JAVA_BYTE, 120 + i, eui[i]);            // EUI64
        }
        d.set(INT, 128, ns.lbaShift() << 16);                         // LBAF0: LBADS, MS = 0, RP = 0
        return Status.SUCCESS;
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
        if (context.namespace(nsid) == null) {
            return Status.INVALID_NAMESPACE_OR_FORMAT;
        }
        String serial = context.options().serial();
        int at = put(d, 0, 1, AdminIds.eui64(serial, nsid));
        at = put(d, at, 2, AdminIds.nguid(serial, nsid));
        put(d, at, 3, AdminIds.uuid(serial, nsid));
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
