package io.javadevices.nvme.admin;

import io.javadevices.nvme.model.Namespace;
import io.javadevices.nvme.queue.CommandHandler;
import io.javadevices.nvme.queue.Sqe;
import io.javadevices.nvme.spec.Status;

import java.io.IOException;

/**
 * Set Features (09h) and Get Features (0Ah), NVMe 1.4 §5.21/§5.15. Nothing is saveable (SV → Feature
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
        int fid = cmd.cdw10() & 0xFF;
        if ((cmd.cdw10() & 0x8000_0000) != 0) {
            return CommandHandler.result(Status.FEATURE_NOT_SAVEABLE);
        }
        int v = cmd.cdw11();
        switch (fid) {
            case ARBITRATION -> state.arbitration = v;
            case POWER_MANAGEMENT -> {
                if ((v & 0x1F) != 0) {
                    return CommandHandler.result(Status.INVALID_FIELD); // only power state 0 (NPSS = 0)
                }
                state.powerManagement = v & 0xFF;
            }
            case TEMPERATURE_THRESHOLD -> {
                int tmpsel = (v >>> 16) & 0xF;
                int thsel = (v >>> 20) & 0x3;
                if (tmpsel != 0 && tmpsel != 0xF || thsel > 1) {
                    return CommandHandler.result(Status.INVALID_FIELD);
                }
                if (thsel == 0) {
                    state.tempOver = v & 0xFFFF;
                } else {
                    state.tempUnder = v & 0xFFFF;
                }
            }
            case ERROR_RECOVERY -> {
                if ((v & 0x10000) != 0) {
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
                if ((v & 0xFFFF) == 0xFFFF || (v >>> 16) == 0xFFFF) {
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
                if (vector == 0 && (v & 0x10000) == 0) {
                    return CommandHandler.result(Status.INVALID_FIELD); // admin vector: CD must be 1
                }
                boolean[] cd = state.coalescingDisabled.clone();
                cd[vector] = (v & 0x10000) != 0;
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
        int fid = cmd.cdw10() & 0xFF;
        int sel = (cmd.cdw10() >>> 8) & 7;
        if (sel > 3) {
            return CommandHandler.result(Status.INVALID_FIELD);
        }
        if (fid == VOLATILE_WRITE_CACHE && !state.writeCachePresent()) {
            return CommandHandler.result(Status.INVALID_FIELD);
        }
        if (sel == 3) {
            // Supported capabilities: bit 2 changeable (none saveable / namespace specific).
            return switch (fid) {
                case ARBITRATION, POWER_MANAGEMENT, TEMPERATURE_THRESHOLD, ERROR_RECOVERY, VOLATILE_WRITE_CACHE,
                     INTERRUPT_COALESCING, INTERRUPT_VECTOR_CONFIG, WRITE_ATOMICITY, ASYNC_EVENT_CONFIG,
                     SOFTWARE_PROGRESS_MARKER -> CommandHandler.result(Status.SUCCESS, 0x4);
                case NUMBER_OF_QUEUES -> CommandHandler.result(Status.SUCCESS, 0);
                default -> CommandHandler.result(Status.INVALID_FIELD);
            };
        }
        boolean dflt = sel != 0;
        int v;
        switch (fid) {
            case ARBITRATION -> v = dflt ? 0 : state.arbitration;
            case POWER_MANAGEMENT -> v = dflt ? 0 : state.powerManagement;
            case TEMPERATURE_THRESHOLD -> {
                int tmpsel = (cmd.cdw11() >>> 16) & 0xF;
                int thsel = (cmd.cdw11() >>> 20) & 0x3;
                if (tmpsel != 0 && tmpsel != 0xF || thsel > 1) {
                    return CommandHandler.result(Status.INVALID_FIELD);
                }
                v = thsel == 0 ? (dflt ? FeatureState.DEFAULT_TEMP_OVER : state.tempOver) : (dflt ? 0 : state.tempUnder);
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
                v = vector | (cd ? 0x10000 : 0);
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
}
