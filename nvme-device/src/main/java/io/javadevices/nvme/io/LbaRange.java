package io.javadevices.nvme.io;

import io.javadevices.nvme.model.Namespace;
import io.javadevices.nvme.queue.Sqe;
import io.javadevices.nvme.spec.Status;

/**
 * The LBA range of an NVM command that addresses one (Read, Write, Compare, Verify, Write Zeroes, Write
 * Uncorrectable; NVMe 1.4 §6): SLBA in CDW10-11, NLB in CDW12 bits 15:0, 0-based. One place for the decoding
 * and for the checks every such command makes in the same order as QEMU's nvme_check_bounds callers: an active
 * namespace, then the range inside it.
 */
final class LbaRange {
    private LbaRange() {
    }

    /** Number of logical blocks: NLB + 1 (1 to 65536). */
    static int blocks(Sqe cmd) {
        return (cmd.cdw12() & 0xFFFF) + 1;
    }

    /** Invalid Namespace or Format if {@code ns} is null (not active), LBA Out of Range if the range leaves it, else success. */
    static int check(Namespace ns, Sqe cmd) {
        if (ns == null) {
            return Status.INVALID_NAMESPACE_OR_FORMAT;
        }
        return ns.inRange(cmd.cdw10and11(), blocks(cmd)) ? Status.SUCCESS : Status.LBA_OUT_OF_RANGE;
    }

    /**
     * {@link #check} for a command that moves the range's data (Read, Write, Compare): between the namespace and
     * the range check, more than {@code maxTransferBytes} (Identify Controller MDTS) is Invalid Field (QEMU
     * checks nvme_check_mdts before nvme_check_bounds too).
     */
    static int checkTransfer(Namespace ns, Sqe cmd, long maxTransferBytes) {
        if (ns == null) {
            return Status.INVALID_NAMESPACE_OR_FORMAT;
        }
        if ((long) blocks(cmd) << ns.lbaShift() > maxTransferBytes) {
            return Status.INVALID_FIELD;
        }
        return ns.inRange(cmd.cdw10and11(), blocks(cmd)) ? Status.SUCCESS : Status.LBA_OUT_OF_RANGE;
    }
}
