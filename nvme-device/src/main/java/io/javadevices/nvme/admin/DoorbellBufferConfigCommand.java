package io.javadevices.nvme.admin;

import io.javadevices.nvme.queue.Sqe;
import io.javadevices.nvme.spec.Status;

/**
 * Doorbell Buffer Config (admin 7Ch; NVMe 1.3 §5.7, Base 2.1 §5.2.5 / Figures 486-488). PRP1 = Shadow
 * Doorbell page, PRP2 = EventIdx page; each one CC.MPS page, page aligned, fully inside guest memory
 * and distinct (the checks of QEMU nvme_dbbuf_config and SPDK, all Invalid Field). GPA 0 is accepted
 * when mapped (as QEMU and SPDK do; "DBBUF off" is the option, not an address). Re-issuing replaces the pages and
 * re-associates all I/O queues; controller reset forgets them. Only offered when option dbbuf=on (OACS
 * bit 8, see AdminOpcodes); otherwise it is not in the table and answers Invalid Opcode.
 */
final class DoorbellBufferConfigCommand {
    private final AdminContext context;

    DoorbellBufferConfigCommand(AdminContext context) {
        this.context = context;
    }

    int execute(Sqe cmd) {
        long shadow = cmd.prp1();
        long eventIdx = cmd.prp2();
        int page = context.pageSize();
        if ((shadow & (page - 1)) != 0 || (eventIdx & (page - 1)) != 0 || shadow == eventIdx
                || !context.memory().isContiguous(shadow, page) || !context.memory().isContiguous(eventIdx, page)) {
            return Status.INVALID_FIELD;
        }
        context.queues().configureDoorbellBuffer(shadow, eventIdx);
        return Status.SUCCESS;
    }
}
