package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * PCI Local Bus 3.0 §6.2.2: with Bus Master Enable clear a function issues no memory accesses. The
 * controller must then neither fetch commands nor post completions, and must go on by itself once the
 * host sets the bit again (Linux clears it in pci_disable_device and sets it in pci_set_master).
 */
class BusMasterTest {
    private static final int COMMAND = 0x04, MEMORY = 0x2, BUS_MASTER = 0x4;

    @Test
    void noDmaWhileBusMasterIsClearAndResumesWhenSet() throws Exception {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:16M")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            byte[] pattern = new byte[4096];
            java.util.Arrays.fill(pattern, (byte) 0x3C);
            f.host.memory().write(buf, pattern, 0, pattern.length);
            assertTrue(q.execute(Command.write(1, 0, 8, buf, 0), Duration.ofSeconds(5)).ok());

            f.host.configWrite(COMMAND, 2, MEMORY); // Bus Master Enable off
            long readsBefore = f.stat(NvmeStatistics.IO_READS);
            f.host.memory().fill(buf, 4096, (byte) 0);
            int cid = q.submit(Command.read(1, 0, 8, buf, 0));
            Thread.sleep(300);
            assertTrue(q.reap().isEmpty(), "no completion may be posted without Bus Master Enable");
            assertEquals(readsBefore, f.stat(NvmeStatistics.IO_READS), "the command was not even fetched");
            assertEquals(0, f.host.memory().readInt(buf), "no data was written to guest memory");

            f.host.configWrite(COMMAND, 2, MEMORY | BUS_MASTER);
            List<Completion> done = q.awaitCompletions(1, Duration.ofSeconds(5));
            assertEquals(cid, done.get(0).cid());
            assertTrue(done.get(0).ok(), done.get(0).toString());
            byte[] back = new byte[4096];
            f.host.memory().read(buf, back, 0, back.length);
            assertArrayEquals(pattern, back, "the read completed once Bus Master Enable was set");
        }
    }

    /**
     * The admin doorbell mirror into Doorbell Buffer Config slot 0 (QEMU nvme_process_db) is a DMA write too:
     * with Bus Master Enable clear it must not happen (QEMU's pci_dma_write is dropped then as well).
     */
    @Test
    void noAdminShadowMirrorWhileBusMasterIsClear() throws Exception {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:16M")) {
            f.driver.bringUp(1, 16, true);
            long shadow = f.driver.shadowPage(), eventIdx = f.driver.eventIdxPage();
            f.host.configWrite(COMMAND, 2, MEMORY); // Bus Master Enable off
            f.host.memory().writeInt(shadow, 0xABCD);
            f.host.memory().writeInt(eventIdx, 0xABCD);
            f.host.mmioWrite32(0, 0x1000, f.driver.adminQueue().sqTail()); // admin SQ tail, unchanged value
            assertEquals(0xABCD, f.host.memory().readInt(shadow), "shadow slot 0 written without Bus Master Enable");
            assertEquals(0xABCD, f.host.memory().readInt(eventIdx), "EventIdx slot 0 written without Bus Master Enable");
        }
    }
}
