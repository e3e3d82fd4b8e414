package io.javadevices.nvme.admin;

import io.javadevices.nvme.model.AdminIds;
import io.javadevices.nvme.model.ErrorLog;
import io.javadevices.nvme.model.GuestErrors;
import io.javadevices.nvme.queue.OpcodeTable;
import io.javadevices.nvme.queue.QueueStats;
import io.javadevices.nvme.queue.Sqe;
import io.javadevices.nvme.spec.EffectsLog;
import io.javadevices.nvme.spec.ErrorLogEntry;
import io.javadevices.nvme.spec.FirmwareSlotLog;
import io.javadevices.nvme.spec.Nvme;
import io.javadevices.nvme.spec.SmartLog;
import io.javadevices.nvme.spec.Status;

import java.lang.foreign.MemorySegment;

/**
 * Get Log Page (02h, NVMe 1.4 §5.14): 01h Error Information, 02h SMART / Health (controller-wide,
 * NSID 0 or FFFFFFFFh), 03h Firmware Slot, 05h Commands Supported and Effects. Other LIDs → Invalid
 * Log Page. Length = (NUMDU:NUMDL + 1) dwords (at most 2^32 dwords, so a long never overflows), from byte
 * offset LPO (CDW13:CDW12, unsigned 64-bit); only the bytes the log has are transferred.
 */
final class LogPageCommand {
    static final int ERROR_INFO = 0x01, SMART = 0x02, FIRMWARE_SLOT = 0x03, COMMAND_EFFECTS = 0x05;

    private final AdminContext context;
    private final AdminCommandDispatcher dispatcher;

    LogPageCommand(AdminContext context, AdminCommandDispatcher dispatcher) {
        this.context = context;
        this.dispatcher = dispatcher;
    }

    int execute(Sqe cmd) {
        int lid = cmd.cdw10() & 0xFF;
        boolean retainEvent = (cmd.cdw10() & 0x8000) != 0;
        long dwords = ((cmd.cdw10() >>> 16) | ((long) (cmd.cdw11() & 0xFFFF) << 16)) + 1;
        long length = dwords * 4;
        long offset = (cmd.cdw12() & 0xFFFF_FFFFL) | ((long) cmd.cdw13() << 32);
        int size = switch (lid) {
            case ERROR_INFO -> ErrorLog.ENTRIES * (int) ErrorLogEntry.SIZE;
            case SMART -> (int) SmartLog.SIZE;
            case FIRMWARE_SLOT -> (int) FirmwareSlotLog.SIZE;
            case COMMAND_EFFECTS -> (int) EffectsLog.SIZE;
            case LbaStatusLog.LID -> LbaStatusLog.SIZE;
            default -> -1;
        };
        if (size < 0) {
            return Status.INVALID_LOG_PAGE;
        }
        // LPO is a 64-bit guest value: compare unsigned, so that 2^63 and above are "beyond the log" rather
        // than a negative offset. A dword-misaligned LPO or one at or past the log's end is Invalid Field
        // (NVMe 1.4 §5.14.1; QEMU pci_nvme_err_invalid_log_page_offset).
        if ((offset & 3) != 0 || Long.compareUnsigned(offset, size) >= 0) {
            context.guestErrors().record(GuestErrors.Kind.INVALID_LOG_OFFSET, offset);
            return Status.INVALID_FIELD;
        }
        if (length > context.maxTransferBytes()) {
            return Status.INVALID_FIELD;
        }
        if (lid == SMART && cmd.nsid() != 0 && cmd.nsid() != Nvme.BROADCAST_NSID) {
            return Status.INVALID_FIELD; // LPA bit 0 = 0: no per-namespace SMART
        }
        MemorySegment data = dispatcher.buffer(8192);
        switch (lid) {
            case ERROR_INFO -> context.errorLog().render(data);
            case SMART -> smart(data);
            case FIRMWARE_SLOT -> firmware(data);
            case LbaStatusLog.LID -> LbaStatusLog.render(context.namespaces(), data);
            default -> effects(data);
        }
        // Like QEMU: transfer what the log has from LPO on; the rest of the host buffer is left alone.
        long available = Math.min(length, size - offset);
        MemorySegment out = data.asSlice(offset, available);
        int status = dispatcher.toHost(cmd, out, available);
        if (status == Status.SUCCESS && !retainEvent) {
            context.asyncEvents().logPageRead(lid);
        }
        return status;
    }

    /** SMART / Health Information, NVMe 1.4 §5.14.1.2: controller-wide, no warnings. */
    private void smart(MemorySegment d) {
        QueueStats t = context.queues().totals();
        SmartLog.CW.set(d, (byte) 0);
        SmartLog.CTEMP.set(d, (short) 296);                           // 296 K, below WCTEMP
        SmartLog.AVSP.set(d, (byte) 100);
        SmartLog.AVSPT.set(d, (byte) 10);
        SmartLog.DUR_LOW.set(d, (t.bytesRead() / 512 + 999) / 1000);    // thousands of 512-byte units, rounded up
        SmartLog.DUW_LOW.set(d, (t.bytesWritten() / 512 + 999) / 1000);
        SmartLog.HRC_LOW.set(d, t.reads());
        SmartLog.HWC_LOW.set(d, t.writes());
        SmartLog.PWRC_LOW.set(d, 1);
        SmartLog.NUMERR_LOW.set(d, context.errorLog().count());
    }

    /** Firmware Slot Information, NVMe 1.4 §5.14.1.3: slot 1 active, its revision in FRS1. */
    private void firmware(MemorySegment d) {
        FirmwareSlotLog.AFI.set(d, (byte) 1);
        FirmwareSlotLog.FRS1.ascii(d, AdminIds.FIRMWARE_REVISION);
    }

    /** Commands Supported and Effects, NVMe 1.4 §5.14.1.5: CSUPP for each command, LBCC for those that change media. */
    private void effects(MemorySegment d) {
        for (OpcodeTable.Entry<?> e : dispatcher.commands().entries()) {
            EffectsLog.admin(d, e.opcode(), e.effects());
        }
        for (OpcodeTable.Entry<?> e : context.nvmCommands().entries()) {
            EffectsLog.io(d, e.opcode(), e.effects());
        }
    }
}
