package io.javadevices.nvme.admin;

import io.javadevices.nvme.dma.PrpWalker;
import io.javadevices.nvme.model.GuestErrors;
import io.javadevices.nvme.queue.CommandHandler;
import io.javadevices.nvme.queue.OpcodeTable;
import io.javadevices.nvme.queue.QueueWorker;
import io.javadevices.nvme.queue.Sqe;
import io.javadevices.nvme.spec.Nvme;
import io.javadevices.nvme.spec.Status;
import io.javadevices.pci.GuestMemoryException;

import java.lang.foreign.MemorySegment;

/**
 * Admin command set (NVMe 1.4 §5) on the admin queue's worker: common checks, then the handler of
 * {@link AdminOpcodes} (the table of commands, effects and OACS).
 */
public final class AdminCommandDispatcher implements CommandHandler {
    final AdminContext context;
    private final PrpWalker prp;
    private final MemorySegment buffer = MemorySegment.ofArray(new long[8192 / 8]);
    private final OpcodeTable<AdminCommandDispatcher> commands;
    // The command implementations, used by the operations of AdminOpcodes.
    final IdentifyCommand identify;
    final QueueCommands queues;
    final FeatureCommands features;
    final LogPageCommand logs;
    final DoorbellBufferConfigCommand dbbuf;
    final NamespaceManagementCommand namespaceManagement;
    final NamespaceAttachmentCommand namespaceAttachment;
    final FormatNvmCommand format;

    public AdminCommandDispatcher(AdminContext context) {
        this.context = context;
        this.commands = AdminOpcodes.of(context.options());
        this.prp = new PrpWalker(context.memory(), (int) (context.maxTransferBytes() / 4096) + 2, context.guestErrors());
        this.identify = new IdentifyCommand(context, this);
        this.queues = new QueueCommands(context);
        this.features = new FeatureCommands(context, this);
        this.logs = new LogPageCommand(context, this);
        this.dbbuf = new DoorbellBufferConfigCommand(context);
        this.namespaceManagement = new NamespaceManagementCommand(context, this);
        this.namespaceAttachment = new NamespaceAttachmentCommand(context, this);
        this.format = new FormatNvmCommand(context);
    }

    @Override
    public long execute(Sqe cmd, QueueWorker worker) {
        long result = dispatch(cmd, worker);
        // An unsupported Identify CNS is a capability probe (Linux asks CNS 06h on every probe), not an error.
        boolean probe = cmd.opcode() == Nvme.ADM_IDENTIFY && !IdentifyCommand.supported(cmd.cdw10() & 0xFF);
        if (result != CommandHandler.DEFERRED && CommandHandler.status(result) == Status.INVALID_FIELD && !probe) {
            context.guestErrors().record(GuestErrors.Kind.ADMIN_INVALID_FIELD, cmd.opcode());
        }
        return result;
    }

    private long dispatch(Sqe cmd, QueueWorker worker) {
        worker.stats().countAdminCommand();
        int opcode = cmd.opcode();
        if (cmd.fused() != 0 || cmd.psdt() != 0) {
            // No fused admin commands; PSDT must be PRP: "SGLs shall not be used for Admin commands in NVMe over
            // PCIe" (QEMU nvme_admin_cmd answers Invalid Field the same way; SPDK too). SGLs are for I/O only.
            if (opcode == Nvme.ADM_DOORBELL_BUFFER_CONFIG) {
                worker.stats().countDbbuf(false);
            }
            return CommandHandler.result(Status.INVALID_FIELD);
        }
        return commands.execute(this, cmd, worker);
    }

    /** The admin commands of this controller (for the effects log and OACS). */
    OpcodeTable<AdminCommandDispatcher> commands() {
        return commands;
    }

    @Override
    public void poll(QueueWorker worker) {
        context.asyncEvents().poll(worker,
                () -> context.interrupts().posted(worker.queue().cq, 1, worker.stats()));
    }

    /** A zeroed scratch buffer of {@code length} (≤ 8 KiB) bytes for building a data structure. */
    MemorySegment buffer(int length) {
        MemorySegment b = buffer.asSlice(0, length);
        b.fill((byte) 0);
        return b;
    }

    /** Transfers {@code length} bytes of {@code data} to the host buffer described by PRP1/PRP2. */
    int toHost(Sqe cmd, MemorySegment data, long length) {
        return transfer(cmd, data, length, true);
    }

    /**
     * Transfers {@code length} bytes from the host buffer described by PRP1/PRP2 into {@code data} (a Set Features
     * or Namespace Management data structure). On a Data Transfer Error {@code data} holds a partial copy:
     * callers act only on SUCCESS.
     */
    int fromHost(Sqe cmd, MemorySegment data, long length) {
        return transfer(cmd, data, length, false);
    }

    private int transfer(Sqe cmd, MemorySegment data, long length, boolean toHost) {
        if (length > context.maxTransferBytes()) {
            return Status.INVALID_FIELD;
        }
        int status = prp.walk(cmd.prp1(), cmd.prp2(), length, context.pageSize());
        if (status != Status.SUCCESS) {
            return status;
        }
        try {
            if (toHost) {
                prp.copyToGuest(data, length);
            } else {
                prp.copyFromGuest(data, length);
            }
        } catch (GuestMemoryException e) {
            context.guestErrors().record(GuestErrors.Kind.DMA_OUTSIDE_MEMORY, e.address());
            return Status.DATA_TRANSFER_ERROR;
        }
        return Status.SUCCESS;
    }
}
