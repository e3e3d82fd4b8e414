package io.javadevices.nvme.backend;

import io.javadevices.nvme.NvmeOptions;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The start-up fit check of {@code ram:} namespaces (issue 11 item 8). */
class RamBudgetTest {
    private static final String MEMINFO = "MemTotal:        2048 kB\nMemFree:          100 kB\nMemAvailable:     200 kB\nSwapTotal:       1024 kB\n";

    @Test
    void ramPlusSwapIsTheLimitNotWhatIsFreeNow() {
        RamBudget.check(3072 * 1024L, MEMINFO); // above MemAvailable, within MemTotal + SwapTotal
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RamBudget.check(3072 * 1024L + 1, MEMINFO));
        assertTrue(e.getMessage().contains("MemTotal + SwapTotal"), e.getMessage());
        RamBudget.check(Long.MAX_VALUE, "garbage"); // unreadable meminfo: no check
    }

    @Test
    void anAbsurdRamNamespaceIsRefusedAtParse() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> NvmeOptions.parse(Map.of("namespaces", "ram:1024T")));
        assertTrue(e.getMessage().startsWith("ram: namespaces total"), e.getMessage());
        // The sum counts, and does not overflow into a small number.
        assertThrows(IllegalArgumentException.class, () -> NvmeOptions.parse(Map.of("namespaces",
                "ram:9000000000000000000,ram:9000000000000000000")));
        assertEquals(2, NvmeOptions.parse(Map.of("namespaces", "ram:64M,null:1024T")).namespaces().size(),
                "null: holds nothing and is not counted");
    }
}
