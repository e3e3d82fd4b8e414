package io.javadevices.nvme.admin;

import io.javadevices.nvme.GuestErrors;
import io.javadevices.nvme.Nvme;
import io.javadevices.nvme.Status;
import io.javadevices.nvme.dma.PrpWalker;
import io.javadevices.nvme.queue.CommandHandler;
import io.javadevices.nvme.queue.QueueWorker;
import io.javadevices.nvme.queue.Sqe;
import io.javadevices.pci.GuestMemoryException;

import java.lang.foreign.MemorySegment;

/**
 * Admin command set (NVMe 1.4 §5) dispatch: opcode → handler class. Runs on the admin queue worker.
 *
 * <pre>
 * 00h Delete I/O SQ, 01h Create I/O SQ, 04h Delete I/O CQ, 05h Create I/O CQ → {@link QueueCommands}
 * 02h Get Log Page                                                          → {@link LogPageCommand}
 * 06h Identify                                                              → {@link IdentifyCommand}
 * 09h Set Features, 0Ah Get Features                                        → {@link FeatureCommands}
 * 0Ch Asynchronous Event Request                                            → {@link AsyncEvents}
 * 7Ch Doorbell Buffer Config                                                → {@link DoorbellBufferConfigCommand}
 * 08h Abort (always "not aborted"), 18h Keep Alive (success), others         → Invalid Opcode
 * </pre>
 */
public final class AdminCommandDispatcher implements CommandHandler {
    private final AdminContext context;
    private final PrpWalker prp;
    private final MemorySegment buffer = MemorySegment.ofArray(new long[8192 / 8]);
    private final IdentifyCommand identify;
    private final QueueCommands queues;
    private final FeatureCommands features;
    private final LogPageCommand logs;
    private final DoorbellBufferConfigCommand dbbuf;

    public AdminCommandDispatcher(AdminContext context) {
        this.context = context;
        this.prp = new PrpWalker(context.memory(), (int) (context.maxTransferBytes() / 4096) + 2, context.guestErrors());
        this.identify = new IdentifyCommand(context, this);
        this.queues = new QueueCommands(context);
        this.features = new FeatureCommands(context);
        this.logs = new LogPageCommand(context, this);
        this.dbbuf = new DoorbellBufferConfigCommand(context);
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
        worker.stats().adminCommands++;
        int opcode = cmd.opcode();
        if (cmd.fused() != 0 || cmd.psdt() != 0) {
            // No fused admin commands; PSDT must be PRP (QEMU and SPDK reject the same way).
            if (opcode == Nvme.ADM_DOORBELL_BUFFER_CONFIG) {
                worker.stats().dbbufRejected++;
            }
            return CommandHandler.result(Status.INVALID_FIELD);
        }
        return switch (opcode) {
            case Nvme.ADM_DELETE_SQ -> CommandHandler.result(queues.deleteSubmissionQueue(cmd));
            case Nvme.ADM_CREATE_SQ -> CommandHandler.result(queues.createSubmissionQueue(cmd));
            case Nvme.ADM_DELETE_CQ -> CommandHandler.result(queues.deleteCompletionQueue(cmd));
            case Nvme.ADM_CREATE_CQ -> CommandHandler.result(queues.createCompletionQueue(cmd));
            case Nvme.ADM_GET_LOG_PAGE -> CommandHandler.result(logs.execute(cmd));
            case Nvme.ADM_IDENTIFY -> CommandHandler.result(identify.execute(cmd));
            case Nvme.ADM_SET_FEATURES -> features.set(cmd);
            case Nvme.ADM_GET_FEATURES -> features.get(cmd);
            // Abort (§5.1): best effort is allowed; we never abort. DW0 bit 0 = 1: command not aborted.
            case Nvme.ADM_ABORT -> CommandHandler.result(Status.SUCCESS, 1);
            case Nvme.ADM_ASYNC_EVENT_REQUEST -> context.asyncEvents().submit(cmd.cid())
                    ? CommandHandler.DEFERRED : CommandHandler.result(Status.AER_LIMIT_EXCEEDED);
            case Nvme.ADM_KEEP_ALIVE -> CommandHandler.result(Status.SUCCESS);
            case Nvme.ADM_DOORBELL_BUFFER_CONFIG -> {
                if (!context.options().dbbuf()) {
                    yield CommandHandler.result(Status.INVALID_OPCODE);
                }
                int status = dbbuf.execute(cmd);
                if (status == Status.SUCCESS) {
                    worker.stats().dbbufAccepted++;
                } else {
                    worker.stats().dbbufRejected++;
                }
                yield CommandHandler.result(status);
            }
            default -> CommandHandler.result(Status.INVALID_OPCODE);
        };
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
        if (length > context.maxTransferBytes()) {
            return Status.INVALID_FIELD;
        }
        int status = prp.walk(cmd.prp1(), cmd.prp2(), length, context.pageSize());
        if (status != Status.SUCCESS) {
            return status;
        }
        try {
            prp.copyToGuest(data, length);
        } catch (GuestMemoryException e) {
            context.guestErrors().record(GuestErrors.Kind.DMA_OUTSIDE_MEMORY, e.address());
            return Status.DATA_TRANSFER_ERROR;
        }
        return Status.SUCCESS;
    }
}
