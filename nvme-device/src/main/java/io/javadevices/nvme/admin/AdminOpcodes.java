package io.javadevices.nvme.admin;

import io.javadevices.nvme.queue.CommandHandler;
import io.javadevices.nvme.queue.OpcodeTable;
import io.javadevices.nvme.spec.Nvme;
import io.javadevices.nvme.spec.Status;

import static io.javadevices.nvme.queue.OpcodeTable.CSUPP;
import static io.javadevices.nvme.queue.OpcodeTable.NIC;

/**
 * The admin command set (NVMe 1.4 §5), as QEMU's nvme_cse_acs: dispatch, the admin half of the Commands
 * Supported and Effects log and Identify Controller OACS all come from {@link #ALL}.
 *
 * <pre>
 * 00h Delete I/O SQ, 01h Create I/O SQ, 04h Delete I/O CQ, 05h Create I/O CQ → {@link QueueCommands}
 * 02h Get Log Page                                                          → {@link LogPageCommand}
 * 06h Identify                                                              → {@link IdentifyCommand}
 * 08h Abort                                                                 → always "not aborted"
 * 09h Set Features, 0Ah Get Features                                        → {@link FeatureCommands}
 * 0Ch Asynchronous Event Request                                            → {@link AsyncEvents}
 * 0Dh Namespace Management, 15h Namespace Attachment (OACS bit 3)           → {@link NamespaceManagementCommand},
 *                                                                             {@link NamespaceAttachmentCommand}
 * 18h Keep Alive                                                            → success
 * 7Ch Doorbell Buffer Config (option dbbuf, OACS bit 8)                     → {@link DoorbellBufferConfigCommand}
 * 80h Format NVM (OACS bit 1)                                               → {@link FormatNvmCommand}
 * 86h Get LBA Status (OACS bit 9)                                           → {@link LbaStatusCommand}
 * others                                                                    → Invalid Command Opcode
 * </pre>
 */
public final class AdminOpcodes {
    /** The option that enables Doorbell Buffer Config. */
    public static final String DBBUF = "dbbuf";

    /** Every admin command this controller can offer. */
    public static final OpcodeTable<AdminCommandDispatcher> ALL = OpcodeTable.<AdminCommandDispatcher>builder()
            .add(Nvme.ADM_DELETE_SQ, "Delete I/O Submission Queue", CSUPP,
                    (d, cmd, w) -> CommandHandler.result(d.queues.deleteSubmissionQueue(cmd)))
            .add(Nvme.ADM_CREATE_SQ, "Create I/O Submission Queue", CSUPP,
                    (d, cmd, w) -> CommandHandler.result(d.queues.createSubmissionQueue(cmd)))
            .add(Nvme.ADM_GET_LOG_PAGE, "Get Log Page", CSUPP,
                    (d, cmd, w) -> CommandHandler.result(d.logs.execute(cmd)))
            .add(Nvme.ADM_DELETE_CQ, "Delete I/O Completion Queue", CSUPP,
                    (d, cmd, w) -> CommandHandler.result(d.queues.deleteCompletionQueue(cmd)))
            .add(Nvme.ADM_CREATE_CQ, "Create I/O Completion Queue", CSUPP,
                    (d, cmd, w) -> CommandHandler.result(d.queues.createCompletionQueue(cmd)))
            .add(Nvme.ADM_IDENTIFY, "Identify", CSUPP,
                    (d, cmd, w) -> CommandHandler.result(d.identify.execute(cmd)))
            // Abort (§5.1): best effort is allowed; we never abort. DW0 bit 0 = 1: command not aborted.
            .add(Nvme.ADM_ABORT, "Abort", CSUPP, (d, cmd, w) -> CommandHandler.result(Status.SUCCESS, 1))
            .add(Nvme.ADM_SET_FEATURES, "Set Features", CSUPP, (d, cmd, w) -> d.features.set(cmd))
            .add(Nvme.ADM_GET_FEATURES, "Get Features", CSUPP, (d, cmd, w) -> d.features.get(cmd))
            .add(Nvme.ADM_ASYNC_EVENT_REQUEST, "Asynchronous Event Request", CSUPP,
                    (d, cmd, w) -> d.context.asyncEvents().submit(cmd.cid())
                            ? CommandHandler.DEFERRED : CommandHandler.result(Status.AER_LIMIT_EXCEEDED))
            // NIC: the namespace inventory changes, so Linux nvme_passthru_end rescans after an nvme-cli
            // create-ns / delete-ns / attach-ns / detach-ns (nvme_command_effects reads this log's entry).
            .add(Nvme.ADM_NAMESPACE_MANAGEMENT, "Namespace Management", CSUPP | NIC, null, Nvme.OACS_NS_MANAGEMENT,
                    (d, cmd, w) -> d.namespaceManagement.execute(cmd))
            .add(Nvme.ADM_NAMESPACE_ATTACHMENT, "Namespace Attachment", CSUPP | NIC, null, Nvme.OACS_NS_MANAGEMENT,
                    (d, cmd, w) -> CommandHandler.result(d.namespaceAttachment.execute(cmd)))
            .add(Nvme.ADM_KEEP_ALIVE, "Keep Alive", CSUPP, (d, cmd, w) -> CommandHandler.result(Status.SUCCESS))
            .add(Nvme.ADM_DOORBELL_BUFFER_CONFIG, "Doorbell Buffer Config", CSUPP, DBBUF, Nvme.OACS_DBBUF,
                    (d, cmd, w) -> {
                        int status = d.dbbuf.execute(cmd);
                        w.stats().countDbbuf(status == Status.SUCCESS);
                        return CommandHandler.result(status);
                    })
            .add(Nvme.ADM_FORMAT_NVM, "Format NVM", FormatNvmCommand.EFFECTS, null, FormatNvmCommand.OACS_FORMAT_NVM,
                    (d, cmd, w) -> CommandHandler.result(d.format.execute(cmd)))
            .add(Nvme.ADM_GET_LBA_STATUS, "Get LBA Status", CSUPP, null, LbaStatusCommand.OACS_GET_LBA_STATUS,
                    (d, cmd, w) -> CommandHandler.result(LbaStatusCommand.execute(d, cmd)))
            .build();

    private AdminOpcodes() {
    }

    /** The admin commands of a controller with {@code options}. */
    public static OpcodeTable<AdminCommandDispatcher> of(AdminSettings options) {
        return ALL.enabled(option -> option.equals(DBBUF) && options.dbbuf());
    }
}
