package io.javadevices.nvme.admin;

import io.javadevices.nvme.model.Namespace;
import io.javadevices.nvme.queue.CommandHandler;
import io.javadevices.nvme.queue.Sqe;
import io.javadevices.nvme.spec.Nvme;
import io.javadevices.nvme.spec.Status;

import java.io.IOException;

import static io.javadevices.nvme.admin.FeatureTable.*;

/**
 * Set Features (09h) and Get Features (0Ah), NVMe 1.4 §5.21/§5.13, for the features of {@link FeatureTable} (any
 * other FID → Invalid Field). The common fields first: Get SEL 00b current, 01b default, 10b saved (nothing is
 * saveable, so the saved value is the default), 11b the table's capabilities, 100b-111b Invalid Field; Set SV = 1 →
 * Feature Identifier Not Saveable; a Set with an NSID other than 0h / FFFFFFFFh → Feature Identifier Not Namespace
 * Specific (no feature here is). Then the value: in dword 11 / dword 0 here, in a data structure through PRP1/PRP2
 * in {@link DataFeatures}. APST (0Ch: Identify APSTA = 0, so Linux's nvme_configure_apst never sends it), Host
 * Memory Buffer (0Dh: HMPRE = 0), Keep Alive Timer (0Fh: KAS = 0, no timer to expire) and Host Identifier are not
 * features of this controller. Volatile Write Cache (06h) exists only when the controller advertises a cache
 * (Identify VWC bit 0, set when a namespace's backend has one): WCE = 0 makes every write durable before it
 * completes.
 */
final class FeatureCommands {
    /**
     * The ONCS bits (Identify Controller bytes 521:520, NVMe 1.4 Figure 247) that stand for features rather than
     * NVM commands, so they are not in io/NvmOpcodes' table: bit 4, the Save field of Set Features and the Select
     * field of Get Features are supported; bit 6, the Timestamp feature. IdentifyCommand ORs them into ONCS.
     */
    static final int ONCS_SAVE_SELECT = 1 << 4, ONCS_TIMESTAMP = 1 << 6, ONCS_FEATURES = ONCS_SAVE_SELECT | ONCS_TIMESTAMP;
    /** Critical warnings 7:0 plus Namespace Attribute (8) and Firmware Activation (9) notices. */
    static final int SUPPORTED_AEN = 0x3FF;

    private final AdminContext context;
    private final FeatureState state;
    private final DataFeatures data;

    FeatureCommands(AdminContext context, AdminCommandDispatcher dispatcher) {
        this.context = context;
        this.state = context.features();
        this.data = new DataFeatures(state, dispatcher);
    }

    private int queuesAllocated() {
        int n = context.maxIoQueues() - 1; // 0-based, same count of SQs and CQs
        return n << 16 | n;
    }

    long set(Sqe cmd) {
        int fid = fid(cmd.cdw10());
        Feature feature = FeatureTable.feature(fid, state);
        if (feature == null) {
            return CommandHandler.result(Status.INVALID_FIELD);
        }
        if ((cmd.cdw10() & CDW10_SV) != 0) {
            return CommandHandler.result(Status.FEATURE_NOT_SAVEABLE);
        }
        if (cmd.nsid() != 0 && cmd.nsid() != Nvme.BROADCAST_NSID && (feature.capabilities() & NAMESPACE_SPECIFIC) == 0) {
            return CommandHandler.result(Status.FEATURE_NOT_NAMESPACE_SPECIFIC);
        }
        if (feature.dataLength() > 0) {
            return CommandHandler.result(data.set(cmd, fid));
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
        Feature feature = FeatureTable.feature(fid, state);
        if (sel > SEL_SUPPORTED_CAPABILITIES || feature == null) {
            return CommandHandler.result(Status.INVALID_FIELD);
        }
        if (sel == SEL_SUPPORTED_CAPABILITIES) {
            return CommandHandler.result(Status.SUCCESS, feature.capabilities());
        }
        boolean dflt = sel != 0; // 01b default, 10b saved: nothing is saveable, so the saved value is the default
        if (feature.dataLength() > 0) {
            return CommandHandler.result(data.get(cmd, fid, dflt));
        }
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
