package io.javadevices.nvme.admin;

import io.javadevices.nvme.model.AdminIds;
import io.javadevices.nvme.model.GuestErrors;
import io.javadevices.nvme.queue.OpcodeTable;
import io.javadevices.nvme.queue.QueueStats;
import io.javadevices.nvme.queue.Sqe;
import io.javadevices.nvme.spec.EffectsLog;
import io.javadevices.nvme.spec.FeatureEffectsLog;
import io.javadevices.nvme.spec.FirmwareSlotLog;
import io.javadevices.nvme.spec.Nvme;
import io.javadevices.nvme.spec.SmartLog;
import io.javadevices.nvme.spec.Status;
import io.javadevices.nvme.spec.SupportedLogPagesLog;

import java.lang.foreign.MemorySegment;

/**
 * Get Log Page (02h, NVMe 1.4 §5.14; NVMe 2.0 §5.16): the log pages of {@link LogPages}, any other LID → Invalid
 * Log Page. Length = (NUMDU:NUMDL + 1) dwords (at most 2^32 dwords, so a long never overflows), from byte offset
 * LPO (CDW13:CDW12, unsigned 64-bit); only the bytes the log has are transferred. The extended fields NUMDU and LPO
 * are honoured (Identify LPA bit 2). Fields this controller has no use for are Invalid Field rather than ignored,
 * so a host asking for something else never gets a page it did not ask for: a Log Specific Parameter (no log here
 * defines one), a Log Specific Identifier (no endurance groups, NVM sets or domains), a UUID index (no UUID list,
 * CTRATT bit 9 = 0), an index offset (OT = 1; every LID Supported and Effects entry has IOS = 0) and a command set
 * other than NVM (CSI 00h).
 */
final class LogPageCommand {
    /**
     * Identify Controller LPA (NVMe 1.4 Figure 247; NVMe 2.0 Figure 275): bit 1 the Commands Supported and Effects
     * log, bit 2 extended data (NUMDU, LPO). Bit 0 (SMART per namespace) is clear: SMART counts the controller, and
     * an NSID other than 0h / FFFFFFFFh is Invalid Field. Bit 5 is clear: besides LIDs 00h and 12h, which are served,
     * it promises the command scope bits in the Commands Supported and Effects log and the NVMe-MI Commands
     * Supported and Effects log (13h), which this controller does not have.
     */
    static final int LPA = 1 << 1 | 1 << 2;

    private final AdminContext context;
    private final AdminCommandDispatcher dispatcher;
    private final ChangedNamespaceLog changedNamespaces;

    LogPageCommand(AdminContext context, AdminCommandDispatcher dispatcher) {
        this.context = context;
        this.dispatcher = dispatcher;
        this.changedNamespaces = new ChangedNamespaceLog(context);
    }

    /** What a log page's renderer sees of the controller. */
    AdminContext context() {
        return context;
    }

    /** Log 04h: it remembers what it showed, to clear exactly that once the host has read it. */
    ChangedNamespaceLog changedNamespaces() {
        return changedNamespaces;
    }

    int execute(Sqe cmd) {
        int lid = cmd.cdw10() & 0xFF;
        LogPages.Page page = LogPages.ALL.page(lid);
        if (page == null) {
            return Status.INVALID_LOG_PAGE;
        }
        boolean retainEvent = (cmd.cdw10() & CDW10_RAE) != 0;
        if ((cmd.cdw10() & CDW10_LSP) != 0 || (cmd.cdw11() & CDW11_LSI) != 0 || cmd.cdw14() != 0) {
            return Status.INVALID_FIELD;
        }
        long dwords = ((cmd.cdw10() >>> 16) | ((long) (cmd.cdw11() & 0xFFFF) << 16)) + 1;
        long length = dwords * 4;
        long offset = (cmd.cdw12() & 0xFFFF_FFFFL) | ((long) cmd.cdw13() << 32);
        int size = page.size();
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
        MemorySegment data = dispatcher.buffer(size);
        int status = page.renderer().render(this, cmd, data);
        if (status != Status.SUCCESS) {
            return status;
        }
        // Like QEMU: transfer what the log has from LPO on; the rest of the host buffer is left alone.
        long available = Math.min(length, size - offset);
        status = dispatcher.toHost(cmd, data.asSlice(offset, available), available);
        if (status == Status.SUCCESS && !retainEvent) {
            context.asyncEvents().unmask(page.eventType());
            if (lid == ChangedNamespaceLog.LID) {
                changedNamespaces.acknowledged(); // after the unmask: a change that raced the read is notified
            }
        }
        return status;
    }

    /** Supported Log Pages, NVMe 2.0 §5.16.1.1: LSUPP for every LID of {@link LogPages}; no index offsets (IOS = 0). */
    int supportedLogPages(MemorySegment d) {
        for (LogPages.Page p : LogPages.ALL.pages()) {
            SupportedLogPagesLog.entry(d, p.lid(), SupportedLogPagesLog.LSUPP);
        }
        return Status.SUCCESS;
    }

    /** Error Information, NVMe 1.4 §5.14.1.1: the newest entries first. */
    int errorInformation(MemorySegment d) {
        context.errorLog().render(d);
        return Status.SUCCESS;
    }

    /**
     * SMART / Health Information, NVMe 1.4 §5.14.1.2: controller-wide, no warnings. LPA bit 0 is clear, so only the
     * controller's log exists: NSID 0h or FFFFFFFFh; any other NSID is Invalid Field (§5.14.1.2: "If the controller
     * does not support the SMART / Health information log page on a per namespace basis, ...").
     */
    int smart(Sqe cmd, MemorySegment d) {
        if (cmd.nsid() != 0 && cmd.nsid() != Nvme.BROADCAST_NSID) {
            return Status.INVALID_FIELD;
        }
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
        return Status.SUCCESS;
    }

    /** Firmware Slot Information, NVMe 1.4 §5.14.1.3: slot 1 active, its revision in FRS1. */
    int firmware(MemorySegment d) {
        FirmwareSlotLog.AFI.set(d, (byte) 1);
        FirmwareSlotLog.FRS1.ascii(d, AdminIds.FIRMWARE_REVISION);
        return Status.SUCCESS;
    }

    /** Commands Supported and Effects, NVMe 1.4 §5.14.1.5: CSUPP for each command, LBCC for those that change media. */
    int effects(MemorySegment d) {
        for (OpcodeTable.Entry<?> e : dispatcher.commands().entries()) {
            EffectsLog.admin(d, e.opcode(), e.effects());
        }
        for (OpcodeTable.Entry<?> e : context.nvmCommands().entries()) {
            EffectsLog.io(d, e.opcode(), e.effects());
        }
        return Status.SUCCESS;
    }

    /**
     * Feature Identifiers Supported and Effects (NVMe 2.0, LID 12h): FSUPP for each feature of {@link FeatureTable}
     * this controller has (Volatile Write Cache only with a cache), all of controller scope; no Set Features here
     * changes user data, namespace capabilities or inventory, or controller capabilities.
     */
    int featureEffects(MemorySegment d) {
        for (FeatureTable.Feature f : FeatureTable.all()) {
            if (FeatureTable.feature(f.fid(), context.features()) != null) {
                FeatureEffectsLog.entry(d, f.fid(), FeatureEffectsLog.FSUPP | FeatureEffectsLog.SCOPE_CONTROLLER);
            }
        }
        return Status.SUCCESS;
    }

    // Command dword encodings (NVMe 1.4 Figure 190-192; NVMe 2.0 Figure 197-200).
    /** CDW10 bit 15: Retain Asynchronous Event. */
    private static final int CDW10_RAE = 1 << 15;
    /** CDW10 bits 14:8: Log Specific Parameter (bits 11:8 in NVMe 1.4, 14:12 reserved there). */
    private static final int CDW10_LSP = 0x7F << 8;
    /** CDW11 bits 31:16: Log Specific Identifier. */
    private static final int CDW11_LSI = 0xFFFF << 16;
}
