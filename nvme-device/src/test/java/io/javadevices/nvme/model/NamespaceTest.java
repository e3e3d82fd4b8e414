package io.javadevices.nvme.model;

import io.javadevices.nvme.backend.RamBackend;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class NamespaceTest {
    @Test
    void reformattedCopyKeepsIdentityAndCountersNotTheFormatFlag() {
        RamBackend backend = new RamBackend(1 << 20);
        Namespace ns = new Namespace(4, backend, 512);
        ns.countFlush();
        ns.setFormatting(true);
        Namespace f = ns.reformatted(12);
        assertNotSame(ns, f);
        assertEquals(4, f.nsid());
        assertSame(backend, f.backend());
        assertEquals(12, f.lbaShift());
        assertEquals(256, f.blocks());
        assertEquals(2048, ns.blocks(), "the old object keeps its format");
        assertFalse(f.formatInProgress());
        assertTrue(ns.formatInProgress());
        f.countFlush();
        Map<String, Long> stats = new HashMap<>();
        f.putStatistics(stats);
        assertEquals(2L, stats.get("ns4.flushes"), "counters carry over");
    }
}
