package io.javadevices.nvme.admin;

import io.javadevices.nvme.model.LbaFormats;
import io.javadevices.nvme.pool.NvmPool;
import io.javadevices.nvme.queue.CommandHandler;
import io.javadevices.nvme.queue.Sqe;
import io.javadevices.nvme.spec.IdNs;
import io.javadevices.nvme.spec.Nvme;
import io.javadevices.nvme.spec.Status;

import java.lang.foreign.MemorySegment;

/**
 * Namespace Management (0Dh, NVMe 1.4 §5.20). CDW10 SEL 0h create: the host's 4096-byte data structure has
 * the Identify Namespace layout (Figure 245) and the fields NSZE, NCAP, FLBAS, DPS and NMIC count (the rest is
 * reserved for create, as nvme-cli's {@code create-ns} leaves it: it zero-fills the structure and sets those,
 * plus ANAGRPID, NVMSETID and ENDGID, which are 0 unless asked); the new NSID is returned in CQE DW0 and the
 * namespace is not attached (§8.12). SEL 1h delete: NSID or FFFFFFFFh for all, an attached namespace detached
 * first (§5.20: "the namespace is detached from all controllers"; QEMU {@code nvme_ns_mgmt} does the same),
 * its capacity back in the pool.
 *
 * <p>Refusals: NCAP &lt; NSZE Thin Provisioning Not Supported (NCAP is always NSZE here); NCAP &gt; NSZE or
 * NSZE 0 Invalid Field; an LBA format other than 0 (512 B) or 1 (4096 B) Invalid Format; DPS ≠ 0 (no
 * protection information) Invalid Field; NMIC bits other than 0 Invalid Field; more than UNVMCAP Namespace
 * Insufficient Capacity; every NSID in use Namespace Identifier Unavailable; delete of NSID 0, an NSID out of
 * range or one not allocated Invalid Field.
 */
final class NamespaceManagementCommand {
    static final int SEL_CREATE = 0, SEL_DELETE = 1;

    private final AdminContext context;
    private final AdminCommandDispatcher dispatcher;

    NamespaceManagementCommand(AdminContext context, AdminCommandDispatcher dispatcher) {
        this.context = context;
        this.dispatcher = dispatcher;
    }

    long execute(Sqe cmd) {
        NvmPool pool = context.pool();
        try {
            return switch (cmd.cdw10() & 0xF) {
                case SEL_CREATE -> create(cmd, pool);
                case SEL_DELETE -> {
                    if (cmd.nsid() == Nvme.BROADCAST_NSID) {
                        pool.deleteAll();
                    } else {
                        pool.delete(cmd.nsid()); // 0 and NSIDs beyond NN are never allocated: Invalid Field
                    }
                    yield CommandHandler.result(Status.SUCCESS);
                }
                default -> CommandHandler.result(Status.INVALID_FIELD);
            };
        } catch (NvmPool.Refusal r) {
            return CommandHandler.result(r.status());
        }
    }

    private long create(Sqe cmd, NvmPool pool) throws NvmPool.Refusal {
        MemorySegment data = dispatcher.buffer(4096);
        int status = dispatcher.fromHost(cmd, data, 4096);
        if (status != Status.SUCCESS) {
            return CommandHandler.result(status);
        }
        long nsze = IdNs.NSZE.get(data);
        long ncap = IdNs.NCAP.get(data);
        int flbas = IdNs.FLBAS.get(data);
        if (nsze == 0 || Long.compareUnsigned(ncap, nsze) > 0) {
            return CommandHandler.result(Status.INVALID_FIELD);
        }
        if (ncap != nsze) {
            return CommandHandler.result(Status.THIN_PROVISIONING_NOT_SUPPORTED);
        }
        // FLBAS bits 3:0 the format index, bits 6:5 its upper bits (NVMe 2.0); bit 4 (metadata placement) means
        // nothing without metadata. The formats are those Identify Namespace lists (LbaFormats: 512, 4096 bytes).
        int format = (flbas & 0x0F) | (flbas >>> 1 & 0x30);
        if (format >= LbaFormats.count()) {
            return CommandHandler.result(Status.INVALID_FORMAT);
        }
        if (IdNs.DPS.get(data) != 0 || (IdNs.NMIC.get(data) & ~1) != 0) {
            return CommandHandler.result(Status.INVALID_FIELD);
        }
        int lbaShift = LbaFormats.shift(format);
        if (Long.compareUnsigned(nsze, Long.MAX_VALUE >>> lbaShift) > 0) {
            return CommandHandler.result(Status.NAMESPACE_INSUFFICIENT_CAPACITY);
        }
        int nsid = pool.create(nsze << lbaShift, 1 << lbaShift, IdNs.NMIC.get(data));
        return CommandHandler.result(Status.SUCCESS, nsid);
    }
}
