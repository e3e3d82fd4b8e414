package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Namespace Management (0Dh), Namespace Attachment (15h), the capacity pool behind them (TNVMCAP, UNVMCAP) and
 * the Identify pages of namespace management (CNS 00h inactive, 10h-13h), driven as nvme-cli and Linux do.
 */
class NamespaceManagementTest {
    private static final long MIB = 1L << 20;
    private Fixture f;
    private NamespaceCommands ns;

    private void start(String... options) {
        f = Fixture.of(options);
        f.driver.bringUp(1, 16, true);
        ns = new NamespaceCommands(f.driver);
    }

    @AfterEach
    void close() {
        if (f != null) {
            f.close();
        }
    }

    private static void status(Completion c, int sct, int sc) {
        assertEquals(sct, c.sct(), c.toString());
        assertEquals(sc, c.sc(), c.toString());
    }

    private void put(long address, byte[] data) {
        GuestBytes.put(f, address, data);
    }

    private byte[] get(long address, int length) {
        return GuestBytes.get(f, address, length);
    }

    @Test
    void identifyControllerTellsCapacityAndNamespaceLimits() {
        start("namespaces", "ram:16M", "pool", "ram:64M");
        ByteBuffer id = ns.identify(0x01, 0);
        assertEquals(0x08, id.getShort(256) & 0x08, "OACS bit 3: namespace management and attachment");
        assertEquals(64 * MIB, id.getLong(280), "TNVMCAP");
        assertEquals(0, id.getLong(288), "TNVMCAP high");
        assertEquals(48 * MIB, id.getLong(296), "UNVMCAP: the pool less the command-line namespace");
        assertEquals(32, id.getInt(516), "NN: the NSID range (max-namespaces default with a pool)");
        assertEquals(32, id.getInt(540), "MNAN = NN");
    }

    @Test
    void createAttachIoDetachDeleteCycle() {
        start("namespaces", "ram:16M", "pool", "ram:64M");
        HostQueue q = f.driver.ioQueue(1);
        for (int round = 0; round < 2; round++) {
            int nsid = ns.create(8 * MIB / 512, 0);
            assertEquals(2, nsid, "the lowest free NSID");
            assertEquals(40 * MIB, ns.unvmcap());
            assertEquals(List.of(1, 2), ns.list(0x10), "allocated");
            assertEquals(List.of(1), ns.list(0x02), "a created namespace is not attached");
            assertTrue(Arrays.equals(new byte[4096], f.driver.identify(0x00, 2)), "CNS 00h inactive: zero-filled");
            ByteBuffer idns = ns.identify(0x11, 2);
            assertEquals(8 * MIB / 512, idns.getLong(0), "CNS 11h NSZE");
            assertEquals(8 * MIB / 512, idns.getLong(8), "NCAP");
            assertEquals(8 * MIB, idns.getLong(48), "NVMCAP in bytes");
            assertEquals(0, ns.identify(0x12, 2).getShort(0), "CNS 12h: no controller attached yet");
            status(q.execute(Command.read(2, 0, 1, f.host.allocatePages(1), 0)), 0, 0x0B);

            assertTrue(ns.attach(2).ok());
            assertEquals(List.of(1, 2), ns.list(0x02), "attached: active");
            ByteBuffer ctrls = ns.identify(0x12, 2);
            assertEquals(1, ctrls.getShort(0));
            assertEquals(1, ctrls.getShort(2), "our CNTLID");
            assertEquals(8 * MIB / 512, ns.identify(0x00, 2).getLong(0), "CNS 00h now the namespace");

            long buf = f.host.allocatePages(2);
            byte[] data = new byte[8192];
            new Random(round).nextBytes(data);
            put(buf, data);
            assertTrue(q.execute(Command.write(2, 100, 16, buf, buf + 4096)).ok());
            long back = f.host.allocatePages(2);
            assertTrue(q.execute(Command.read(2, 100, 16, back, back + 4096)).ok());
            assertArrayEquals(data, get(back, 8192));
            status(q.execute(Command.read(2, 8 * MIB / 512, 1, back, 0)), 0, 0x80); // beyond NSZE

            assertTrue(ns.detach(2).ok());
            assertEquals(List.of(1), ns.list(0x02));
            status(q.execute(Command.read(2, 0, 1, back, 0)), 0, 0x0B);
            assertTrue(ns.delete(2).ok());
            assertEquals(48 * MIB, ns.unvmcap(), "capacity returned");
            assertEquals(List.of(1), ns.list(0x10));
        }
        // the new namespace of the second round is a new disk: it reads zeroes, not the first round's data
        int nsid = ns.create(8 * MIB / 512, 0);
        assertTrue(ns.attach(nsid).ok());
        long back = f.host.allocatePages(2);
        put(back, new byte[] {1, 2, 3});
        assertTrue(q.execute(Command.read(nsid, 100, 16, back, back + 4096)).ok());
        assertArrayEquals(new byte[8192], get(back, 8192));
    }

    @Test
    void fourKibFormatAndCapacityInBytes() {
        start("namespaces", "ram:16M", "pool", "ram:64M");
        int nsid = ns.create(1024, 1);
        ByteBuffer idns = ns.identify(0x11, nsid);
        assertEquals(1024, idns.getLong(0));
        assertEquals(4 * MIB, idns.getLong(48), "1024 blocks of 4096 bytes");
        assertEquals(44 * MIB, ns.unvmcap());
        assertTrue(ns.attach(nsid).ok());
        assertEquals(12, ns.lbads(nsid), "LBADS 12");
        assertEquals(1, ns.identify(0x00, nsid).get(26), "FLBAS: format 1, as created");
        // exactly the rest of the pool fits, one block more does not
        status(ns.create(44 * MIB / 512 + 1, 44 * MIB / 512 + 1, 0, 0, 0), 1, 0x15);
        assertTrue(ns.create(44 * MIB / 512, 44 * MIB / 512, 0, 0, 0).ok());
        assertEquals(0, ns.unvmcap());
        status(ns.create(1, 1, 0, 0, 0), 1, 0x15);
    }

    @Test
    void invalidCreateFields() {
        start("namespaces", "ram:16M", "pool", "ram:64M");
        status(ns.create(2048, 1024, 0, 0, 0), 1, 0x1B);            // NCAP < NSZE: thin provisioning
        status(ns.create(1024, 2048, 0, 0, 0), 0, 0x02);            // NCAP > NSZE
        status(ns.create(0, 0, 0, 0, 0), 0, 0x02);                  // NSZE 0
        status(ns.create(1024, 1024, 2, 0, 0), 1, 0x0A);            // LBA format 2 does not exist
        status(ns.create(1024, 1024, 0x0F, 0, 0), 1, 0x0A);
        status(ns.create(1024, 1024, 0x20, 0, 0), 1, 0x0A);         // FLBAS bits 6:5, format 16
        status(ns.create(1024, 1024, 0, 1, 0), 0, 0x02);            // DPS: no protection information
        status(ns.create(1024, 1024, 0, 0, 2), 0, 0x02);            // NMIC reserved bit
        status(ns.create(64 * MIB / 512, 64 * MIB / 512, 0, 0, 0), 1, 0x15); // beyond UNVMCAP
        status(ns.create(-1L, -1L, 0, 0, 0), 1, 0x15);              // NSZE 2^64-1: bytes overflow
        status(ns.create(1L << 62, 1L << 62, 1, 0, 0), 1, 0x15);
        status(f.driver.admin(Command.of(0x0D).cdw(10, 2).prp1(f.driver.dataPage())), 0, 0x02); // SEL 2
        status(f.driver.admin(Command.of(0x0D).cdw(10, 0).prp1(1L << 40)), 0, 0x04);           // outside memory
        assertEquals(48 * MIB, ns.unvmcap(), "nothing was allocated by a refused create");
        assertEquals(List.of(1), ns.list(0x10));
        assertTrue(ns.create(1024, 1024, 0, 0, 1).ok(), "NMIC bit 0 (shared) is accepted");
        assertEquals(1, ns.identify(0x11, 2).get(30), "and reported");
    }

    @Test
    void invalidDeleteAndAttachment() {
        start("namespaces", "ram:16M", "pool", "ram:64M");
        int nsid = ns.create(1024, 0);
        status(ns.delete(5), 0, 0x02);                              // not allocated
        status(ns.delete(0), 0, 0x02);
        status(ns.delete(33), 0, 0x02);                             // beyond NN
        status(ns.attachment(nsid, 0, 1, 2), 1, 0x1C);              // another controller
        status(ns.attachment(nsid, 0, 0), 1, 0x1C);                 // empty list
        status(ns.attachment(nsid, 0, 2, 1, 1), 1, 0x1C);           // ours twice
        status(ns.attachment(nsid, 0, 2, 1, 2), 1, 0x1C);
        status(ns.attachment(nsid, 0, 2048, 1), 1, 0x1C);           // count beyond the 4096-byte buffer
        status(ns.attachment(nsid, 0, 0xFFFF, 1), 1, 0x1C);
        status(ns.attachment(nsid, 2, 1, 1), 0, 0x02);              // SEL 2
        status(ns.attachment(7, 0, 1, 1), 0, 0x02);                 // not allocated
        status(ns.attachment(0, 0, 1, 1), 0, 0x0B);
        status(ns.attachment(0xFFFF_FFFF, 0, 1, 1), 0, 0x0B);
        status(ns.detach(nsid), 1, 0x1A);                           // not attached
        assertEquals(List.of(1), ns.list(0x02), "no refused attachment attached anything");
        assertTrue(ns.attach(nsid).ok());
        status(ns.attach(nsid), 1, 0x18);                           // twice
        status(ns.attach(1), 1, 0x18);                              // a command-line namespace is attached
        assertTrue(ns.detach(1).ok(), "a command-line namespace can be detached like any other");
        assertEquals(List.of(nsid), ns.list(0x02));
        Completion outside = f.driver.admin(Command.of(0x15).nsid(nsid).cdw(10, 1).prp1(1L << 40));
        status(outside, 0, 0x04);
    }

    @Test
    void deleteDetachesAnAttachedNamespaceAndBroadcastDeletesAll() {
        start("namespaces", "ram:16M", "pool", "ram:64M");
        int a = ns.create(2048, 0);
        int b = ns.create(256, 1);
        assertTrue(ns.attach(a).ok());
        assertEquals(List.of(1, a), ns.list(0x02));
        assertTrue(ns.delete(a).ok(), "deleting an attached namespace detaches it first");
        assertEquals(List.of(1), ns.list(0x02));
        assertEquals(List.of(1, b), ns.list(0x10));
        status(f.driver.ioQueue(1).execute(Command.read(a, 0, 1, f.host.allocatePages(1), 0)), 0, 0x0B);
        assertTrue(ns.delete(0xFFFF_FFFF).ok());
        assertEquals(List.of(), ns.list(0x10), "every namespace deleted, the command-line one too");
        assertEquals(List.of(), ns.list(0x02));
        assertEquals(64 * MIB, ns.unvmcap());
        assertTrue(ns.delete(0xFFFF_FFFF).ok(), "deleting all of nothing succeeds");
        assertEquals(1, ns.create(64 * MIB / 4096, 1), "the whole pool as one namespace, at NSID 1");
        assertEquals(0, ns.unvmcap());
    }

    @Test
    void noFreeNsidIsNamespaceIdentifierUnavailable() {
        start("namespaces", "ram:16M", "pool", "ram:64M", "max-namespaces", "2");
        assertEquals(2, ns.identify(0x01, 0).getInt(516), "NN");
        assertEquals(2, ns.create(1024, 0));
        status(ns.create(1024, 1024, 0, 0, 0), 1, 0x16);
        assertTrue(ns.delete(1).ok());
        assertEquals(1, ns.create(1024, 0), "a freed NSID is reused");
    }

    @Test
    void defaultPoolIsTheCommandLineNamespacesSoNothingIsUnallocated() {
        start("namespaces", "ram:16M,null:1G@4096", "max-namespaces", "2");
        assertEquals(16 * MIB + 1024 * MIB, ns.tnvmcap());
        assertEquals(0, ns.unvmcap());
        assertEquals(2, ns.identify(0x01, 0).getInt(516), "NN: as many as the command line has (max-namespaces)");
        status(ns.create(8, 8, 0, 0, 0), 1, 0x16);                  // NN = 2, both NSIDs in use
        assertTrue(ns.delete(2).ok());
        assertEquals(1024 * MIB, ns.unvmcap());
        status(ns.create(2048 * MIB / 4096, 2048 * MIB / 4096, 1, 0, 0), 1, 0x15); // beyond UNVMCAP
        int nsid = ns.create(512 * MIB / 4096, 1);
        assertTrue(ns.attach(nsid).ok());
        assertEquals(512 * MIB, ns.unvmcap());
    }

    @Test
    void ramNamespacesMustFitTheHostsMemory() {
        // A 64 TiB null namespace makes a 64 TiB default pool; a RAM namespace of that size could never be held.
        start("namespaces", "ram:16M,null:64T");
        assertTrue(ns.delete(2).ok());
        assertEquals(64L << 40, ns.unvmcap());
        status(ns.create((32L << 40) / 4096, (32L << 40) / 4096, 1, 0, 0), 1, 0x15);
        assertEquals(List.of(1), ns.list(0x10));
        assertTrue(ns.create(MIB / 512, 0) > 1, "a small one fits");
    }

    @Test
    void controllerListsAndInvalidIdentifyNsids() {
        start("namespaces", "ram:16M", "pool", "ram:64M");
        ByteBuffer all = ns.identify(0x13, 0, 0);
        assertEquals(1, all.getShort(0));
        assertEquals(1, all.getShort(2));
        assertEquals(1, ns.identify(0x13, 0, 1).getShort(0), "CNTLID 1 >= CNTID 1");
        assertEquals(0, ns.identify(0x13, 0, 2).getShort(0), "no controller from CNTID 2");
        assertEquals(1, ns.identify(0x12, 1, 0).getShort(0));
        assertEquals(0, ns.identify(0x12, 1, 2).getShort(0));
        status(f.driver.identifyStatus(0x12, 5), 0, 0x02);          // not allocated
        status(f.driver.identifyStatus(0x12, 0), 0, 0x0B);
        status(f.driver.identifyStatus(0x12, 33), 0, 0x0B);
        status(f.driver.identifyStatus(0x10, 0xFFFF_FFFE), 0, 0x0B);
        status(f.driver.identifyStatus(0x10, 0xFFFF_FFFF), 0, 0x0B);
        assertEquals(List.of(), java.util.stream.IntStream.range(0, 4)
                .map(i -> ns.identify(0x10, 1).getInt(4 * i)).filter(v -> v != 0).boxed().toList(), "CNS 10h after NSID 1");
        assertTrue(Arrays.equals(new byte[4096], f.driver.identify(0x11, 9)), "CNS 11h unallocated: zero-filled");
        assertTrue(Arrays.equals(new byte[4096], f.driver.identify(0x00, 9)), "CNS 00h inactive: zero-filled");
        status(f.driver.identifyStatus(0x00, 33), 0, 0x0B);         // beyond NN
        status(f.driver.identifyStatus(0x11, 0), 0, 0x0B);
        status(f.driver.identifyStatus(0x03, 9), 0, 0x0B);          // descriptors of an inactive NSID
    }

    @Test
    void createdNamespacesHaveUniqueIdentifiersInIdentifyAndDescriptors() {
        start("namespaces", "ram:16M", "pool", "ram:64M");
        int a = ns.create(1024, 0), b = ns.create(1024, 0);
        assertTrue(ns.attach(a).ok());
        assertTrue(ns.attach(b).ok());
        List<String> ids = new java.util.ArrayList<>();
        for (int nsid : new int[] {1, a, b}) {
            byte[] idns = f.driver.identify(0x00, nsid);
            byte[] nguid = Arrays.copyOfRange(idns, 104, 120), eui = Arrays.copyOfRange(idns, 120, 128);
            byte[] desc = f.driver.identify(0x03, nsid);
            assertArrayEquals(eui, Arrays.copyOfRange(desc, 4, 12), "EUI-64 descriptor = Identify EUI64");
            assertArrayEquals(nguid, Arrays.copyOfRange(desc, 16, 32), "NGUID descriptor = Identify NGUID");
            byte[] uuid = Arrays.copyOfRange(desc, 36, 52);
            assertEquals(3, desc[32]);
            assertFalse(Arrays.equals(new byte[16], uuid));
            ids.add(java.util.HexFormat.of().formatHex(nguid));
            ids.add(java.util.HexFormat.of().formatHex(eui));
            ids.add(java.util.HexFormat.of().formatHex(uuid));
        }
        assertEquals(ids.size(), ids.stream().distinct().count(), "no identifier shared: " + ids);
        assertEquals((byte) 0x4A, f.driver.identify(0x00, a)[120], "EUI-64 under this device's OUI");
    }

    @Test
    void everyChangeGoesThroughTheNamespaceTableListeners() {
        start("namespaces", "ram:16M", "pool", "ram:64M");
        List<Integer> notices = new java.util.concurrent.CopyOnWriteArrayList<>();
        f.controller.namespaceTable().addListener(notices::add); // what raises Namespace Attribute Changed
        int a = ns.create(1024, 0);
        assertEquals(List.of(), notices, "a created namespace is not attached: nothing changed for this controller");
        assertTrue(ns.attach(a).ok());
        assertTrue(ns.detach(a).ok());
        assertTrue(ns.attach(a).ok());
        assertTrue(ns.delete(a).ok());                              // implicit detach
        assertTrue(ns.delete(0xFFFF_FFFF).ok());                    // NSID 1, attached
        assertEquals(List.of(a, a, a, a, 1), notices);
        status(ns.attach(1), 0, 0x02);
        assertEquals(5, notices.size(), "a refused command changes nothing");
    }

    @Test
    void createThenAttachRaisesNamespaceAttributeChangedWithTheNewNsidInLog04h() {
        start("namespaces", "ram:16M", "pool", "ram:64M");          // bringUp: OAES bit 8 enabled, one AER out
        int nsid = ns.create(1024, 0);
        assertTrue(ns.attach(nsid).ok());
        assertEquals(0x04_00_02, f.driver.awaitAsyncEvent(java.time.Duration.ofSeconds(5)),
                "notice, namespace attribute changed, log 04h");
        assertTrue(f.driver.admin(Command.getLogPage(0x04, 0xFFFF_FFFF, 4096, f.driver.dataPage())).ok());
        ByteBuffer log = ByteBuffer.wrap(f.driver.readData(4096)).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        assertEquals(nsid, log.getInt(0), "the Changed Namespace List names the attached namespace");
        assertEquals(0, log.getInt(4));
    }

    @Test
    void namespaceManagementEffectsAskLinuxToRescan() {
        start("namespaces", "ram:16M", "pool", "ram:64M");
        assertTrue(f.driver.admin(Command.getLogPage(0x05, 0, 4096, f.driver.dataPage())).ok());
        ByteBuffer log = ByteBuffer.wrap(f.driver.readData(4096)).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        assertEquals(0b1001, log.getInt(4 * 0x0D), "Namespace Management: CSUPP | NIC");
        assertEquals(0b1001, log.getInt(4 * 0x15), "Namespace Attachment: CSUPP | NIC");
    }
}
