package io.javadevices.nvme.spec;

import java.lang.foreign.StructLayout;

import static io.javadevices.nvme.spec.Fields.*;

/**
 * Host Behavior Support feature data structure, 512 bytes (Set/Get Features 16h, NVMe 1.4 §5.21.1.22, Figure 312):
 * byte 0 ACRE (Advanced Command Retry Enable, bit 0); the rest is reserved in NVMe 1.4 (NVMe 2.0 puts there ETDAS,
 * LBAFEE and later fields, each enabling a capability this controller does not have). libnvme's
 * {@code struct nvme_feat_host_behavior}.
 */
public final class HostBehaviorData {
    public static final long SIZE = 512;

    public static final StructLayout LAYOUT = struct("HostBehaviorData", SIZE,
            u8("ACRE"),
            reserved(511));

    public static final U8 ACRE = u8(LAYOUT, "ACRE");

    private HostBehaviorData() {
    }
}
