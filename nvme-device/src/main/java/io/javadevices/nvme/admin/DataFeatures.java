package io.javadevices.nvme.admin;

import io.javadevices.nvme.queue.Sqe;
import io.javadevices.nvme.spec.HostBehaviorData;
import io.javadevices.nvme.spec.Status;
import io.javadevices.nvme.spec.TimestampData;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The features whose value is a data structure the command moves through PRP1/PRP2 (NVMe 1.4 §5.13/§5.21: "the
 * Data Pointer"), host → controller for Set Features and controller → host for Get Features: Timestamp (0Eh) and
 * Host Behavior Support (16h). A PRP outside guest memory is a Data Transfer Error and changes nothing.
 */
final class DataFeatures {
    private final FeatureState state;
    private final AdminCommandDispatcher dispatcher;

    DataFeatures(FeatureState state, AdminCommandDispatcher dispatcher) {
        this.state = state;
        this.dispatcher = dispatcher;
    }

    int set(Sqe cmd, int fid) {
        return switch (fid) {
            case FeatureTable.TIMESTAMP -> setTimestamp(cmd);
            case FeatureTable.HOST_BEHAVIOR_SUPPORT -> setHostBehavior(cmd);
            default -> Status.INVALID_FIELD;
        };
    }

    /** Get Features, {@code dflt}: the default (SEL 01b, and 10b since nothing is saveable) rather than the current value. */
    int get(Sqe cmd, int fid, boolean dflt) {
        return switch (fid) {
            case FeatureTable.TIMESTAMP -> getTimestamp(cmd, dflt);
            case FeatureTable.HOST_BEHAVIOR_SUPPORT -> getHostBehavior(cmd, dflt);
            default -> Status.INVALID_FIELD;
        };
    }

    /**
     * Timestamp (NVMe 1.4 §5.21.1.14): the host's 48-bit millisecond count, which the controller keeps counting from
     * the moment it was set (bytes 7:6 of what the host sends, Synch and Origin, are the controller's to report and
     * are ignored). QEMU's nvme_set_feature_timestamp.
     */
    private int setTimestamp(Sqe cmd) {
        MemorySegment d = dispatcher.buffer((int) TimestampData.SIZE);
        int status = dispatcher.fromHost(cmd, d, TimestampData.SIZE);
        if (status != Status.SUCCESS) {
            return status;
        }
        state.setTimestamp(TimestampData.QWORD.get(d) & TimestampData.TIMESTAMP_MASK);
        return Status.SUCCESS;
    }

    /**
     * The current value counts on from the last Set Features (Origin 001b) or, never set since the last Controller
     * Level Reset, from 0 at that reset (Origin 000b); that never-set value is also the default. Synch is 0: the
     * count never stops (one power state, no non-operational state).
     */
    private int getTimestamp(Sqe cmd, boolean dflt) {
        MemorySegment d = dispatcher.buffer((int) TimestampData.SIZE);
        long now = System.nanoTime();
        TimestampData.QWORD.set(d, (dflt ? state.timestampSinceReset(now) : state.timestamp(now)) & TimestampData.TIMESTAMP_MASK);
        TimestampData.ATTR.set(d, TimestampData.attributes(dflt ? TimestampData.ORIGIN_RESET : state.timestampOrigin()));
        return dispatcher.toHost(cmd, d, TimestampData.SIZE);
    }

    /**
     * Host Behavior Support (NVMe 1.4 §5.21.1.22): the host's 512 bytes, kept as set. Only ACRE (byte 0 bit 0) may
     * be set; every other bit is reserved in NVMe 1.4 or, in NVMe 2.0, enables something this controller does not
     * have (ETDAS: telemetry data area 4, LBAFEE: extended LBA formats, CTRATT bit 15 = 0), so a non-zero one is
     * Invalid Field and changes nothing. ACRE = 1 lets the controller set the Command Retry Delay field of a
     * completion; Identify CRDT1-3 are 0 and no completion ever sets CRD, so with this controller ACRE changes no
     * completion: a retried command is retried at once, as with ACRE = 0 (Linux's nvme_configure_host_options does
     * not even set it when CRDT1 is 0).
     */
    private int setHostBehavior(Sqe cmd) {
        MemorySegment d = dispatcher.buffer((int) HostBehaviorData.SIZE);
        int status = dispatcher.fromHost(cmd, d, HostBehaviorData.SIZE);
        if (status != Status.SUCCESS) {
            return status;
        }
        int acre = HostBehaviorData.ACRE.get(d);
        if ((acre & ~ACRE_ENABLE) != 0) {
            return Status.INVALID_FIELD;
        }
        for (long at = 0; at < HostBehaviorData.SIZE; at++) {
            if (at != HostBehaviorData.ACRE.offset() && d.get(ValueLayout.JAVA_BYTE, at) != 0) {
                return Status.INVALID_FIELD;
            }
        }
        state.hostBehaviorAcre = acre;
        return Status.SUCCESS;
    }

    private int getHostBehavior(Sqe cmd, boolean dflt) {
        MemorySegment d = dispatcher.buffer((int) HostBehaviorData.SIZE);
        HostBehaviorData.ACRE.set(d, (byte) (dflt ? 0 : state.hostBehaviorAcre));
        return dispatcher.toHost(cmd, d, HostBehaviorData.SIZE);
    }

    /** Host Behavior Support byte 0 bit 0: Advanced Command Retry Enable. */
    private static final int ACRE_ENABLE = 1;
}
