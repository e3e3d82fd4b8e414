package io.javadevices.nvme.admin;

import io.javadevices.nvme.model.Namespace;
import io.javadevices.nvme.queue.CommandHandler;
import io.javadevices.nvme.queue.Sqe;
import io.javadevices.nvme.spec.Status;

import java.io.IOException;

/**
 * Set Features (09h) and Get Features (0Ah), NVMe 1.4 §5.21/§5.13. Nothing is saveable (SV → Feature
 * Identifier Not Saveable); Get SEL 01b/10b return the default, 11b the capabilities (changeable).
 * APST (0Ch) is not supported (Identify APSTA = 0, Linux never sends it) → Invalid Field, as are
 * Host Memory Buffer, Timestamp, Host Identifier and unknown FIDs. Volatile Write Cache (06h) exists
 * only when the controller advertises a cache (Identify VWC bit 0, set when a namespace's backend has one):
 * WCE = 0 makes every write durable before it completes; without a cache it is Invalid Field, as for any
 * feature the controller does not implement.
 */
final class FeatureCommands {
    static final int ARBITRATION = 0x01, POWER_MANAGEMENT = 0x02, TEMPERATURE_THRESHOLD = 0x04,
            ERROR_RECOVERY = 0x05, VOLATILE_WRITE_CACHE = 0x06, NUMBER_OF_QUEUES = 0x07,
            INTERRUPT_COALESCING = 0x08, INTERRUPT_VECTOR_CONFIG = 0x09, WRITE_ATOMICITY = 0x0A,
            ASYNC_EVENT_CONFIG = 0x0B, SOFTWARE_PROGRESS_MARKER = 0x80;
    /** Critical warnings 7:0 plus Namespace Attribute (8) and Firmware Activation (9) notices. */
    static final int SUPPORTED_AEN = 0x3FF;

    private final AdminContext context;
    private final FeatureState state;

    FeatureCommands(AdminContext context) {
        this.context = context;
        this.state = context.features();
    }

    private int queuesAllocated() {
        int n = context.maxIoQueues() - 1; // 0-based, same count of SQs and CQs
        return n << 16 | n;
    }

    long set(Sqe cmd) {
        int fid = fid(cmd.cdw10());
        if ((cmd.cdw10() & CDW10_SV) != 0) {
            return CommandHandler.result(Status.FEATURE_NOT_SAVEABLE);
        }
        int v = cmd.cdw11();
        switch (fid) {
            case ARBITRATION -> state.arbitration = v;
            case POWER_MANAGEMENT -> {
                if ((v & PS_MASK) != 0) {
                    return CommandHandler.result(Status.INVALID_FIELD); // only power state 0 (NPSS = 0)
                }
                state.powerManagement = v & 0xFF;
            }
            case TEMPERATURE_THRESHOLD -> {
                if (!validThresholdSelect(v)) {
                    return CommandHandler.result(Status.INVALID_FIELD);
                }
                if (thsel(v) == THSEL_OVER) {
                    state.tempOver = v & 0xFFFF;
                } else {
                    state.tempUnder = v & 0xFFFF;
                }
            }
            case ERROR_RECOVERY -> {
                if ((v & DULBE) != 0) {
                    return CommandHandler.result(Status.INVALID_FIELD); // DULBE needs deallocated-block errors
                }
                state.errorRecovery = v & 0xFFFF;
            }
            case VOLATILE_WRITE_CACHE -> {
                if (!state.writeCachePresent()) {
                    return CommandHandler.result(Status.INVALID_FIELD);
                }
                return CommandHandler.result(setWriteCache(v & 1));
            }
            case NUMBER_OF_QUEUES -> {
                if ((v & 0xFFFF) == NQ_INVALID || (v >>> 16) == NQ_INVALID) {
                    return CommandHandler.result(Status.INVALID_FIELD);
                }
                return CommandHandler.result(Status.SUCCESS, queuesAllocated());
            }
            case INTERRUPT_COALESCING -> state.coalescing = v & 0xFFFF;
            case INTERRUPT_VECTOR_CONFIG -> {
                int vector = v & 0xFFFF;
                if (vector >= context.msixVectors()) {
                    return CommandHandler.result(Status.INVALID_FIELD);
                }
                if (vector == 0 && (v & IVC_CD) == 0) {
                    return CommandHandler.result(Status.INVALID_FIELD); // admin vector: CD must be 1
                }
                boolean[] cd = state.coalescingDisabled.clone();
                cd[vector] = (v & IVC_CD) != 0;
                state.coalescingDisabled = cd;
            }
            case WRITE_ATOMICITY -> state.writeAtomicity = v & 1;
            case ASYNC_EVENT_CONFIG -> state.asyncEventConfig = v & SUPPORTED_AEN;
            case SOFTWARE_PROGRESS_MARKER -> state.softwareProgress = v & 0xFF;
            default -> {
                return CommandHandler.result(Status.INVALID_FIELD);
            }
        }
        return CommandHandler.result(Status.SUCCESS);
    }

    /**
     * WCE 1 → 0: the flag flips first (writes submitted from now on are synced), then what the cache holds is
     * flushed, as QEMU's nvme_set_feature does, so the completion means "nothing acknowledged is volatile".
     * A failed flush is Internal Error; the cache stays disabled (the safer state) and the backend's failed
     * write-back is sticky, so the next Flush fails too.
     */
    private int setWriteCache(int wce) {
        boolean wasEnabled = state.volatileWriteCacheEnabled();
        state.volatileWriteCache = wce;
        if (wasEnabled && wce == 0) {
            for (Namespace ns : context.namespaces()) {
                try {
                    ns.backend().flush();
                } catch (IOException | RuntimeException e) {
                    return Status.INTERNAL_ERROR;
                }
            }
        }
        return Status.SUCCESS;
    }

    long get(Sqe cmd) {
        int fid = fid(cmd.cdw10());
        int sel = sel(cmd.cdw10());
        if (sel > SEL_SUPPORTED_CAPABILITIES) {
            return CommandHandler.result(Status.INVALID_FIELD);
        }
        if (fid == VOLATILE_WRITE_CACHE && !state.writeCachePresent()) {
            return CommandHandler.result(Status.INVALID_FIELD);
        }
        if (sel == SEL_SUPPORTED_CAPABILITIES) {
            return switch (fid) {
                case ARBITRATION, POWER_MANAGEMENT, TEMPERATURE_THRESHOLD, ERROR_RECOVERY, VOLATILE_WRITE_CACHE,
                     INTERRUPT_COALESCING, INTERRUPT_VECTOR_CONFIG, WRITE_ATOMICITY, ASYNC_EVENT_CONFIG,
                     SOFTWARE_PROGRESS_MARKER -> CommandHandler.result(Status.SUCCESS, CAPABILITY_CHANGEABLE);
                case NUMBER_OF_QUEUES -> CommandHandler.result(Status.SUCCESS, 0);
                default -> CommandHandler.result(Status.INVALID_FIELD);
            };
        }
        boolean dflt = sel != 0; // 01b default, 10b saved: nothing is saveable, so the saved value is the default
        int v;
        switch (fid) {
            case ARBITRATION -> v = dflt ? 0 : state.arbitration;
            case POWER_MANAGEMENT -> v = dflt ? 0 : state.powerManagement;
            case TEMPERATURE_THRESHOLD -> {
                if (!validThresholdSelect(cmd.cdw11())) {
                    return CommandHandler.result(Status.INVALID_FIELD);
                }
                v = thsel(cmd.cdw11()) == THSEL_OVER ? (dflt ? FeatureState.DEFAULT_TEMP_OVER : state.tempOver) : (dflt ? 0 : state.tempUnder);
            }
            case ERROR_RECOVERY -> v = dflt ? 0 : state.errorRecovery;
            case VOLATILE_WRITE_CACHE -> v = dflt ? state.defaultVolatileWriteCache() : state.volatileWriteCache;
            case NUMBER_OF_QUEUES -> v = queuesAllocated();
            case INTERRUPT_COALESCING -> v = dflt ? 0 : state.coalescing;
            case INTERRUPT_VECTOR_CONFIG -> {
                int vector = cmd.cdw11() & 0xFFFF;
                if (vector >= context.msixVectors()) {
                    return CommandHandler.result(Status.INVALID_FIELD);
                }
                boolean cd = vector == 0 || (!dflt && state.coalescingDisabled[vector]);
                v = vector | (cd ? IVC_CD : 0);
            }
            case WRITE_ATOMICITY -> v = dflt ? 0 : state.writeAtomicity;
            case ASYNC_EVENT_CONFIG -> v = dflt ? 0 : state.asyncEventConfig;
            case SOFTWARE_PROGRESS_MARKER -> v = dflt ? 0 : state.softwareProgress;
            default -> {
                return CommandHandler.result(Status.INVALID_FIELD);
            }
        }
        return CommandHandler.result(Status.SUCCESS, v);
    }

    // Command dword encodings (NVMe 1.4 §5.21 Set Features, §5.13 Get Features, §5.21.1 per feature).
    /** Set Features CDW10 bit 31: Save. */
    private static final int CDW10_SV = 1 << 31;
    /** Get Features CDW10 bits 10:8 SEL = 11b: supported capabilities. */
    private static final int SEL_SUPPORTED_CAPABILITIES = 3;
    /** Get Features (SEL 11b) dword 0 bit 2: the feature is changeable (bit 0 saveable, bit 1 per namespace: 0). */
    private static final int CAPABILITY_CHANGEABLE = 1 << 2;
    /** Power Management (02h) dword 11 bits 4:0: Power State. */
    private static final int PS_MASK = 0x1F;
    /** Temperature Threshold (04h) dword 11: TMPSEL 0h composite, Fh all sensors; THSEL 0 over, 1 under. */
    private static final int TMPSEL_COMPOSITE = 0x0, TMPSEL_ALL = 0xF, THSEL_OVER = 0, THSEL_UNDER = 1;
    /** Error Recovery (05h) dword 11 bit 16: Deallocated or Unwritten Logical Block Error Enable. */
    private static final int DULBE = 1 << 16;
    /** Interrupt Vector Configuration (09h) dword 11 bit 16: Coalescing Disable (bits 15:0 the vector). */
    private static final int IVC_CD = 1 << 16;
    /** Number of Queues (07h): NSQR bits 15:0, NCQR bits 31:16, both 0-based; FFFFh is invalid. */
    private static final int NQ_INVALID = 0xFFFF;

    private static int fid(int cdw10) {
        return cdw10 & 0xFF;                       // CDW10 bits 7:0
    }

    private static int sel(int cdw10) {
        return (cdw10 >>> 8) & 7;                  // Get Features CDW10 bits 10:8
    }

    private static int tmpsel(int cdw11) {
        return (cdw11 >>> 16) & 0xF;               // Temperature Threshold dword 11 bits 19:16
    }

    private static int thsel(int cdw11) {
        return (cdw11 >>> 20) & 0x3;               // Temperature Threshold dword 11 bits 21:20
    }

    private static boolean validThresholdSelect(int cdw11) {
        int tmpsel = tmpsel(cdw11);
        return (tmpsel == TMPSEL_COMPOSITE || tmpsel == TMPSEL_ALL) && thsel(cdw11) <= THSEL_UNDER;
    }
}
