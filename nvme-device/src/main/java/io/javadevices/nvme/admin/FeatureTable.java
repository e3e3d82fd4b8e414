package io.javadevices.nvme.admin;

import io.javadevices.nvme.spec.HostBehaviorData;
import io.javadevices.nvme.spec.TimestampData;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The features of Get / Set Features this controller implements (NVMe 1.4 §5.21.1, Figure 271), each with what
 * Get Features SEL 11b reports for it (Figure 189: bit 0 saveable, bit 1 namespace specific, bit 2 changeable)
 * and the size of the data structure it moves through PRP1/PRP2 (0: its value is in dword 11 / dword 0).
 * {@link FeatureCommands} answers exactly these FIDs (any other is Invalid Field, which is what nvme-cli's
 * "all features" walk skips quietly); Identify agrees: ONCS bit 6 for Timestamp, VWC bit 0 for Volatile Write
 * Cache, APSTA = 0 (no 0Ch), KAS = 0 (no 0Fh), HMPRE = 0 (no 0Dh).
 *
 * <pre>
 * 01h Arbitration                 changeable
 * 02h Power Management            changeable (power state 0 only: NPSS = 0)
 * 04h Temperature Threshold       changeable
 * 05h Error Recovery              changeable (one value for the controller; DULBE unsupported)
 * 06h Volatile Write Cache        changeable, only when a namespace's backend has a cache (VWC bit 0)
 * 07h Number of Queues            not changeable: always what the controller allocated
 * 08h Interrupt Coalescing        changeable
 * 09h Interrupt Vector Config     changeable
 * 0Ah Write Atomicity Normal      changeable
 * 0Bh Asynchronous Event Config   changeable
 * 0Eh Timestamp                   changeable, 8-byte data structure
 * 16h Host Behavior Support       changeable, 512-byte data structure
 * 80h Software Progress Marker    changeable
 * </pre>
 *
 * Nothing is saveable (no SEL 11b bit 0, Set SV = 1 → Feature Identifier Not Saveable, SEL 10b returns the default)
 * and nothing is namespace specific (a Set with an NSID other than 0h / FFFFFFFFh → Feature Identifier Not
 * Namespace Specific).
 */
final class FeatureTable {
    static final int ARBITRATION = 0x01, POWER_MANAGEMENT = 0x02, TEMPERATURE_THRESHOLD = 0x04,
            ERROR_RECOVERY = 0x05, VOLATILE_WRITE_CACHE = 0x06, NUMBER_OF_QUEUES = 0x07,
            INTERRUPT_COALESCING = 0x08, INTERRUPT_VECTOR_CONFIG = 0x09, WRITE_ATOMICITY = 0x0A,
            ASYNC_EVENT_CONFIG = 0x0B, TIMESTAMP = 0x0E, HOST_BEHAVIOR_SUPPORT = 0x16,
            SOFTWARE_PROGRESS_MARKER = 0x80;
    /** Get Features SEL 11b dword 0 (NVMe 1.4 Figure 189). */
    static final int SAVEABLE = 1, NAMESPACE_SPECIFIC = 1 << 1, CHANGEABLE = 1 << 2;

    /** @param dataLength bytes of the feature's data structure (through PRP1/PRP2), 0 if it has none */
    record Feature(int fid, String name, int capabilities, int dataLength) {
    }

    private static final List<Feature> ALL = new ArrayList<>();
    private static final Feature[] BY_FID = new Feature[256];

    static {
        add(ARBITRATION, "Arbitration", CHANGEABLE, 0);
        add(POWER_MANAGEMENT, "Power Management", CHANGEABLE, 0);
        add(TEMPERATURE_THRESHOLD, "Temperature Threshold", CHANGEABLE, 0);
        add(ERROR_RECOVERY, "Error Recovery", CHANGEABLE, 0);
        add(VOLATILE_WRITE_CACHE, "Volatile Write Cache", CHANGEABLE, 0);
        add(NUMBER_OF_QUEUES, "Number of Queues", 0, 0);
        add(INTERRUPT_COALESCING, "Interrupt Coalescing", CHANGEABLE, 0);
        add(INTERRUPT_VECTOR_CONFIG, "Interrupt Vector Configuration", CHANGEABLE, 0);
        add(WRITE_ATOMICITY, "Write Atomicity Normal", CHANGEABLE, 0);
        add(ASYNC_EVENT_CONFIG, "Asynchronous Event Configuration", CHANGEABLE, 0);
        add(TIMESTAMP, "Timestamp", CHANGEABLE, (int) TimestampData.SIZE);
        add(HOST_BEHAVIOR_SUPPORT, "Host Behavior Support", CHANGEABLE, (int) HostBehaviorData.SIZE);
        add(SOFTWARE_PROGRESS_MARKER, "Software Progress Marker", CHANGEABLE, 0);
    }

    private static void add(int fid, String name, int capabilities, int dataLength) {
        Feature f = new Feature(fid, name, capabilities, dataLength);
        ALL.add(f);
        BY_FID[fid] = f;
    }

    private FeatureTable() {
    }

    /** Feature {@code fid} of a controller with {@code state}, or null if it has none by that FID. */
    static Feature feature(int fid, FeatureState state) {
        Feature f = BY_FID[fid & 0xFF];
        if (f != null && f.fid() == VOLATILE_WRITE_CACHE && !state.writeCachePresent()) {
            return null; // Identify VWC bit 0 clear: no cache, no feature
        }
        return f;
    }

    /** Every feature this controller can have, whatever its options. */
    static List<Feature> all() {
        return Collections.unmodifiableList(ALL);
    }
}
