package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.LinuxLikeDriver;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** Each admin command with valid and invalid fields, checking NVMe status codes (SCT/SC). */
class AdminCommandsTest {
    private Fixture f;
    private LinuxLikeDriver d;

    @BeforeEach
    void setUp() {
        f = Fixture.of("queues", "4", "namespaces", "ram:16M,null:1G@4096", "mqes", "255");
        d = f.driver;
        d.enable();
        d.enableMsix(5);
    }

    @AfterEach
    void tearDown() {
        f.close();
    }

    private Completion admin(Command c) {
        return d.admin(c);
    }

    private static void status(Completion c, int sct, int sc) {
        assertEquals(sct, c.sct(), c.toString());
        assertEquals(sc, c.sc(), c.toString());
    }

    private ByteBuffer data() {
        return ByteBuffer.wrap(d.readData(4096)).order(ByteOrder.LITTLE_ENDIAN);
    }

    @Test
    void identify() {
        byte[] ctrl = d.identify(0x01, 0);
        assertEquals(32, ctrl[516], "NN: max-namespaces defaults to 32 (room for namespace_add)");
        assertEquals(0x0C, ctrl[520] & 0x0C, "ONCS DSM + write zeroes");
        assertEquals(0x02, ctrl[261] & 0x02, "LPA effects");
        d.identify(0x02, 0);
        ByteBuffer list = data();
        assertEquals(1, list.getInt(0));
        assertEquals(2, list.getInt(4));
        assertEquals(0, list.getInt(8));
        d.identify(0x02, 1);
        assertEquals(2, data().getInt(0));
        d.identify(0x00, 2);
        ByteBuffer ns = data();
        assertEquals((1L << 30) / 4096, ns.getLong(0), "NSZE");
        assertEquals(12, (ns.getInt(128 + 4 * (ns.get(26) & 0xF)) >>> 16) & 0xFF, "LBADS of the format FLBAS names");
        // descriptor list: EUI64 (type 1, len 8) then NGUID (type 2, len 16) then UUID (type 3)
        d.identify(0x03, 1);
        byte[] desc = d.readData(4096);
        assertEquals(1, desc[0]);
        assertEquals(8, desc[1]);
        assertEquals(2, desc[12]);
        assertEquals(16, desc[13]);
        assertEquals(3, desc[32]);
        // NGUID in descriptor == NGUID in Identify Namespace
        byte[] nsid1 = d.identify(0x00, 1);
        d.identify(0x03, 1);
        byte[] desc1 = d.readData(4096);
        assertArrayEquals(java.util.Arrays.copyOfRange(nsid1, 104, 120), java.util.Arrays.copyOfRange(desc1, 16, 32));
        status(d.identifyStatus(0x00, 33), 0, 0x0B); // beyond NN (max-namespaces 32)
        status(d.identifyStatus(0x03, 0), 0, 0x0B);
        status(d.identifyStatus(0x02, 0xFFFF_FFFE), 0, 0x0B);
        status(d.identifyStatus(0x06, 0), 0, 0x02);
        status(d.identifyStatus(0x08, 1), 0, 0x02);
        status(d.identifyStatus(0xFF, 0), 0, 0x02);
        // Identify to an unmapped buffer → Data Transfer Error
        status(admin(Command.identify(1, 0, 1L << 40)), 0, 0x04);
    }

    @Test
    void createAndDeleteQueues() {
        long cq = f.host.allocatePages(4);
        long sq = f.host.allocatePages(16);
        status(admin(Command.createCq(0, 16, cq, 1, true)), 1, 0x01);          // qid 0
        status(admin(Command.createCq(5, 16, cq, 1, true)), 1, 0x01);          // beyond queues=4
        status(admin(Command.createCq(1, 1, cq, 1, true)), 1, 0x02);           // size 1
        status(admin(Command.createCq(1, 257, cq, 1, true)), 1, 0x02);         // > MQES+1
        status(admin(Command.createCq(1, 16, cq, 5, true)), 1, 0x08);          // IV ≥ vectors
        status(admin(Command.createCq(1, 16, cq, 1, true).cdw(11, 2 | 1 << 16)), 0, 0x02); // PC = 0
        status(admin(Command.createCq(1, 16, cq + 512, 1, true)), 0, 0x02);    // not page aligned
        status(admin(Command.createCq(1, 16, 1L << 40, 1, true)), 0, 0x02);    // outside memory
        assertTrue(admin(Command.createCq(1, 16, cq, 1, true)).ok());
        status(admin(Command.createCq(1, 16, cq, 1, true)), 1, 0x01);          // exists
        status(admin(Command.createSq(1, 16, sq, 2)), 1, 0x00);                // CQ 2 missing
        status(admin(Command.createSq(1, 16, sq, 0)), 1, 0x00);                // CQ 0 (admin)
        status(admin(Command.createSq(0, 16, sq, 1)), 1, 0x01);
        status(admin(Command.createSq(1, 300, sq, 1)), 1, 0x02);
        status(admin(Command.createSq(1, 16, sq, 1).cdw(11, 1 << 16)), 0, 0x02); // PC = 0
        assertTrue(admin(Command.createSq(1, 16, sq, 1)).ok());
        status(admin(Command.createSq(1, 16, sq, 1)), 1, 0x01);
        assertEquals(1, f.stat(NvmeStatistics.IO_QUEUES));
        // a second SQ sharing CQ 1
        long sq2 = f.host.allocatePages(1);
        assertTrue(admin(Command.createSq(2, 16, sq2, 1)).ok());
        status(admin(Command.deleteCq(1)), 1, 0x0C);                           // in use
        status(admin(Command.deleteSq(0)), 1, 0x01);
        status(admin(Command.deleteSq(3)), 1, 0x01);
        assertTrue(admin(Command.deleteSq(1)).ok());
        assertTrue(admin(Command.deleteSq(2)).ok());
        assertTrue(admin(Command.deleteCq(1)).ok());
        status(admin(Command.deleteCq(1)), 1, 0x01);
        assertEquals(0, f.stat(NvmeStatistics.IO_QUEUES));
    }

    @Test
    void features() {
        Completion c = admin(Command.setFeatures(0x07, 0x000F_000F));
        assertTrue(c.ok());
        assertEquals(0x0003_0003, c.dw0(), "4 queues, 0-based");
        assertEquals(0x0003_0003, admin(Command.getFeatures(0x07, 0, 0)).dw0());
        status(admin(Command.setFeatures(0x07, 0xFFFF)), 0, 0x02);
        assertTrue(admin(Command.setFeatures(0x01, 0x0302)).ok());
        assertEquals(0x0302, admin(Command.getFeatures(0x01, 0, 0)).dw0());
        assertEquals(0, admin(Command.getFeatures(0x01, 1, 0)).dw0(), "default");
        assertEquals(0x4, admin(Command.getFeatures(0x01, 3, 0)).dw0(), "capabilities: changeable");
        assertTrue(admin(Command.setFeatures(0x02, 0)).ok());
        status(admin(Command.setFeatures(0x02, 1)), 0, 0x02);                  // PS 1 > NPSS
        assertEquals(343, admin(Command.getFeatures(0x04, 0, 0)).dw0());
        assertTrue(admin(Command.setFeatures(0x04, 350)).ok());
        assertEquals(350, admin(Command.getFeatures(0x04, 0, 0)).dw0());
        assertTrue(admin(Command.setFeatures(0x04, 1 << 20 | 200)).ok());     // under threshold
        assertEquals(200, admin(Command.getFeatures(0x04, 0, 1 << 20)).dw0());
        status(admin(Command.setFeatures(0x04, 3 << 16 | 200)), 0, 0x02);    // sensor 3
        assertTrue(admin(Command.setFeatures(0x05, 100)).ok());
        assertEquals(100, admin(Command.getFeatures(0x05, 0, 0)).dw0());
        status(admin(Command.setFeatures(0x06, 0)), 0, 0x02);                 // VWC: ram/null have no cache
        status(admin(Command.getFeatures(0x06, 0, 0)), 0, 0x02);
        assertTrue(admin(Command.setFeatures(0x08, 0x0A04)).ok());
        assertEquals(0x0A04, admin(Command.getFeatures(0x08, 0, 0)).dw0());
        assertTrue(admin(Command.setFeatures(0x09, 1 | 1 << 16)).ok());
        assertEquals(1 | 1 << 16, admin(Command.getFeatures(0x09, 0, 1)).dw0());
        status(admin(Command.setFeatures(0x09, 9)), 0, 0x02);                 // vector 9 ≥ 5
        assertTrue(admin(Command.setFeatures(0x0A, 1)).ok());
        assertEquals(1, admin(Command.getFeatures(0x0A, 0, 0)).dw0());
        assertTrue(admin(Command.setFeatures(0x0B, 1 << 8)).ok());
        assertEquals(1 << 8, admin(Command.getFeatures(0x0B, 0, 0)).dw0());
        status(admin(Command.setFeatures(0x0C, 1)), 0, 0x02);                 // APST unsupported
        status(admin(Command.getFeatures(0x0C, 0, 0)), 0, 0x02);
        assertTrue(admin(Command.setFeatures(0x80, 5)).ok());
        assertEquals(5, admin(Command.getFeatures(0x80, 0, 0)).dw0());
        status(admin(Command.setFeatures(0x81, 0)), 0, 0x02);
        status(admin(Command.setFeatures(0x01, 0).cdw(10, 0x8000_0001)), 1, 0x0D); // save
        status(admin(Command.setFeatures(0x55, 0)), 0, 0x02);
        status(admin(Command.getFeatures(0x01, 4, 0)), 0, 0x02);
        // features reset on controller reset
        d.disable();
        d.enable();
        assertEquals(0, admin(Command.getFeatures(0x01, 0, 0)).dw0());
    }

    @Test
    void logPages() {
        long page = d.dataPage();
        assertTrue(admin(Command.getLogPage(0x01, 0, 4096, page)).ok());
        Completion smart = admin(Command.getLogPage(0x02, 0xFFFF_FFFF, 512, page));
        assertTrue(smart.ok());
        ByteBuffer s = data();
        assertEquals(296, s.getShort(1));
        assertEquals(100, s.get(3));
        assertTrue(admin(Command.getLogPage(0x02, 0, 512, page)).ok());
        status(admin(Command.getLogPage(0x02, 1, 512, page)), 0, 0x02);
        assertTrue(admin(Command.getLogPage(0x03, 0, 512, page)).ok());
        assertEquals(1, data().get(0), "active slot 1");
        assertTrue(admin(Command.getLogPage(0x05, 0, 4096, page)).ok());
        ByteBuffer e = data();
        assertEquals(1, e.getInt(4 * 0x7C) & 1, "DBBUF supported in effects log");
        assertEquals(1, e.getInt(4 * 0x06) & 1);
        assertEquals(1, e.getInt(1024 + 4 * 0x02) & 1);
        assertTrue(admin(Command.getLogPage(0x04, 0, 512, page)).ok());           // changed namespace list
        status(admin(Command.getLogPage(0x06, 0, 512, page)), 1, 0x09);
        status(admin(Command.getLogPage(0xC0, 0, 512, page)), 1, 0x09);
        status(admin(Command.getLogPage(0x02, 0, 512, page).cdw(12, 4096)), 0, 0x02); // offset past the log
        // a partial read with an offset
        assertTrue(admin(Command.getLogPage(0x05, 0, 64, page).cdw(12, 1024)).ok());
        // error log records an I/O error
        d.setNumberOfQueues(1);
        var q = d.createQueuePair(1, 16, 1);
        q.execute(Command.read(1, 1L << 40, 1, page, 0));
        long before = f.controller.errorLog().count();
        assertTrue(admin(Command.getLogPage(0x01, 0, 4096, page)).ok());
        assertEquals(before, f.controller.errorLog().count());
    }

    @Test
    void asyncEventsAbortKeepAliveAndUnknown() {
        for (int i = 0; i < 4; i++) {
            d.submitAer(100 + i);
        }
        Completion over = admin(Command.of(0x0C));
        status(over, 1, 0x05);                                                // AER limit exceeded
        Completion abort = admin(Command.of(0x08).cdw(10, 1 | 5 << 16));
        assertTrue(abort.ok());
        assertEquals(1, abort.dw0() & 1, "not aborted");
        assertTrue(admin(Command.of(0x18)).ok());                               // keep alive
        status(admin(Command.of(0x10)), 0, 0x01);                               // firmware commit: invalid opcode
        status(admin(Command.of(0x80)), 0, 0x0B);                               // format NVM of NSID 0
        status(admin(Command.of(0xC5)), 0, 0x01);
        status(admin(Command.identify(1, 0, d.dataPage()).flags(0x01)), 0, 0x02); // fused
        // an invalid doorbell write completes one AER with an error event (type 0, info 1, log 01h)
        d.setNumberOfQueues(1);
        d.createQueuePair(1, 16, 1);
        f.host.mmioWrite32(0, 0x1000 + 8, 999);
        long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        List<Completion> events;
        do {
            events = d.asyncCompletions();
        } while (events.isEmpty() && System.nanoTime() < deadline);
        assertEquals(1, events.size(), events.toString());
        assertEquals(0x010100, events.get(0).dw0());
        // a reset drops the remaining AERs without a completion: no DMA into the admin CQ (NVMe 1.4 §7.3.2)
        d.disable();
        assertEquals(0, f.controller.asyncEvents().outstanding());
        List<Completion> late = d.asyncCompletions().stream().filter(c -> c.cid() >= 100 && c.cid() < 104 && !c.ok()).toList();
        assertEquals(List.of(), late, "no AER completion after the reset");
    }

    @Test
    void dbbufOffRejectsOpcodeAndClearsOacs() {
        try (Fixture off = Fixture.of("dbbuf", "off")) {
            off.driver.enable();
            byte[] id = off.driver.identify(0x01, 0);
            assertEquals(0, id[257] & 1, "OACS bit 8 clear");
            long a = off.host.allocatePages(1), b = off.host.allocatePages(1);
            status(off.driver.admin(Command.dbbuf(a, b)), 0, 0x01);
        }
    }
}
