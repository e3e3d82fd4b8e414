package io.javadevices.nvme.admin;

import io.javadevices.nvme.model.Namespace;
import io.javadevices.nvme.queue.Sqe;
import io.javadevices.nvme.spec.Status;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static io.javadevices.pci.LittleEndian.INT;
import static io.javadevices.pci.LittleEndian.LONG;

/**
 * Get LBA Status (86h, NVMe 1.4 §5.27, OACS bit 9): the potentially unrecoverable LBAs of a namespace in
 * {@code [SLBA, SLBA + RL)}, which here are the blocks Write Uncorrectable marked (the backends have no other
 * way to know a block is bad before it is read). CDW10-11 SLBA, CDW12 MNDW (dwords to return, 0-based), CDW13
 * bits 31:24 ATYPE, 15:0 RL (0: to the end of the namespace).
 *
 * <p>ATYPE 11h (return tracked LBAs) and 10h (scan, then return untracked and tracked LBAs) give the same
 * answer: every unrecoverable block is tracked the moment it is marked, so a scan can find nothing new (and
 * would only be a Verify of the range). Other action types → Invalid Field; SLBA beyond the namespace → LBA
 * Out of Range. The data (libnvme struct nvme_lba_status): NLSD, CMPC (1h: MNDW ran out with more descriptors
 * left, 2h: the whole range was examined), then 16-byte descriptors DSLBA, NLB. At most {@link #MAX_BYTES}
 * are returned; a host wanting more asks again from the LBA after the last descriptor.
 */
final class LbaStatusCommand {
    /** OACS bit 9: Get LBA Status supported. */
    static final int OACS_GET_LBA_STATUS = 1 << 9;
    static final int ATYPE_SCAN_UNTRACKED = 0x10, ATYPE_TRACKED = 0x11;
    static final int CMPC_MORE = 1, CMPC_COMPLETE = 2;
    /** The admin scratch buffer: 8-byte header + 511 descriptors. */
    static final int MAX_BYTES = 8192;
    private static final int HEADER = 8, DESCRIPTOR = 16;

    private LbaStatusCommand() {
    }

    static int execute(AdminCommandDispatcher d, Sqe cmd) {
        Namespace ns = d.context.namespace(cmd.nsid());
        if (ns == null) {
            return Status.INVALID_NAMESPACE_OR_FORMAT;
        }
        int atype = cmd.cdw13() >>> 24;
        if (atype != ATYPE_SCAN_UNTRACKED && atype != ATYPE_TRACKED) {
            return Status.INVALID_FIELD;
        }
        long slba = cmd.cdw10and11();
        if (!ns.inRange(slba, 1)) {
            return Status.LBA_OUT_OF_RANGE;
        }
        int rl = cmd.cdw13() & 0xFFFF;
        long end = rl == 0 ? ns.blocks() : Math.min(ns.blocks(), slba + rl);
        long length = Math.min(((cmd.cdw12() & 0xFFFF_FFFFL) + 1) * 4, MAX_BYTES);
        int fit = (int) Math.max(0, (length - HEADER) / DESCRIPTOR);
        long[] ranges = new long[2 * fit + 1];
        boolean[] more = new boolean[1];
        int n = ns.uncorrectable().ranges(slba, end, ranges, more);
        MemorySegment data = d.buffer(MAX_BYTES);
        data.set(INT, 0, n);                                                       // NLSD
        data.set(ValueLayout.JAVA_BYTE, 4, (byte) (more[0] ? CMPC_MORE : CMPC_COMPLETE)); // CMPC
        for (int i = 0; i < n; i++) {
            long at = HEADER + (long) DESCRIPTOR * i;
            data.set(LONG, at, ranges[2 * i]);                                      // DSLBA
            data.set(INT, at + 8, (int) Math.min(ranges[2 * i + 1], 0xFFFF_FFFFL)); // NLB
        }
        return d.toHost(cmd, data, length);
    }
}
