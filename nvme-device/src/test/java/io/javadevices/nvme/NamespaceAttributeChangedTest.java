package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.LinuxLikeDriver;
import io.javadevices.nvme.model.NamespaceTable;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Namespace Attribute Changed (NVMe 1.4 §5.2.1) and the Changed Namespace List log (04h, §5.14.1.4), driven the
 * way Linux handles them (drivers/nvme/host/core.c): nvme_enable_aen sets Asynchronous Event Configuration from
 * OAES and submits an AER; nvme_complete_async_event takes a notice with info 00h to nvme_handle_aen_notice
 * (sets NVME_AER_NOTICE_NS_CHANGED, queues the scan) and re-arms the AER at once (async_event_work);
 * nvme_scan_work then calls nvme_clear_changed_ns_log (Get Log Page 04h, NSID FFFFFFFFh, 4096 bytes, RAE = 0)
 * and rescans with Identify CNS 02h and CNS 00h. Namespaces are changed through the controller's
 * {@link NamespaceTable} directly, as Namespace Management, Attachment and Format NVM do.
 */
class NamespaceAttributeChangedTest {
    /** AER completion DW0: type 2 (notice), info 00h (Namespace Attribute Changed), log page 04h. */
    private static final int NS_CHANGED_DW0 = 0x04_00_02;
    private static final int RAE = 1 << 15;

    private static NamespaceTable table(Fixture f) {
        return f.controller.namespaceTable();
    }

    /** AER completions seen so far (the driver collects them while it waits for other admin commands). */
    private static List<Completion> events(Fixture f) {
        return f.driver.asyncCompletions().stream().filter(c -> c.cid() == LinuxLikeDriver.AER_CID).toList();
    }

    /** Waits for AER completion number {@code n} (1-based) and returns it. */
    private static Completion awaitEvent(Fixture f, int n) {
        long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        List<Completion> got;
        while ((got = events(f)).size() < n) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("AER completion " + n + " never came; seen " + got);
            }
            Thread.onSpinWait();
        }
        return got.get(n - 1);
    }

    /**
     * No AER completion beyond the first {@code n}: an admin round trip after the change gives the admin worker
     * its event poll (it polls before it fetches commands), so a completion would be in the CQ ahead of it.
     */
    private static void noEventBeyond(Fixture f, int n) {
        assertTrue(f.driver.admin(Command.getFeatures(0x0B, 0, 0)).ok());
        assertTrue(f.driver.admin(Command.getFeatures(0x0B, 0, 0)).ok());
        assertEquals(n, events(f).size(), "AER completions " + events(f));
    }

    /** Get Log Page 04h as nvme_clear_changed_ns_log sends it (RAE = 0 unless {@code retain}): the listed NSIDs. */
    private static List<Integer> changedLog(Fixture f, boolean retain) {
        Command c = Command.getLogPage(0x04, 0xFFFF_FFFF, 4096, f.driver.dataPage());
        if (retain) {
            c.cdw(10, c.cdw(10) | RAE);
        }
        Completion done = f.driver.admin(c);
        assertTrue(done.ok(), done.toString());
        ByteBuffer b = ByteBuffer.wrap(f.driver.readData(4096)).order(ByteOrder.LITTLE_ENDIAN);
        List<Integer> nsids = new ArrayList<>();
        for (int i = 0; i < 1024 && b.getInt(4 * i) != 0; i++) {
            nsids.add(b.getInt(4 * i));
        }
        for (int i = nsids.size(); i < 1024; i++) {
            assertEquals(0, b.getInt(4 * i), "zero-filled after the last entry");
        }
        return nsids;
    }

    /** Identify CNS 02h from NSID 0: the active NSIDs. */
    private static List<Integer> activeList(Fixture f) {
        ByteBuffer b = ByteBuffer.wrap(f.driver.identify(0x02, 0)).order(ByteOrder.LITTLE_ENDIAN);
        List<Integer> nsids = new ArrayList<>();
        for (int i = 0; i < 1024 && b.getInt(4 * i) != 0; i++) {
            nsids.add(b.getInt(4 * i));
        }
        return nsids;
    }

    /** What Linux does on a Namespace Attribute Changed AEN: re-arm, clear the log (returned), rescan. */
    private static List<Integer> linuxHandlesNotice(Fixture f, int eventNumber) {
        Completion aen = awaitEvent(f, eventNumber);
        assertEquals(0, aen.status(), aen.toString());
        assertEquals(NS_CHANGED_DW0, aen.dw0(), "AER DW0: notice, namespace attribute changed, log 04h");
        f.driver.submitAer(LinuxLikeDriver.AER_CID);   // nvme_complete_async_event → async_event_work
        List<Integer> log = changedLog(f, false);       // nvme_scan_work → nvme_clear_changed_ns_log
        for (int nsid : activeList(f)) {                // nvme_scan_ns_list → nvme_scan_ns
            f.driver.identify(0x00, nsid);
        }
        return log;
    }

    @Test
    void linuxSeesADetachedNamespaceGoAndComeBack() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M,ram:8M")) {
            f.driver.bringUp(1, 16, false);              // Set Features 0Bh = OAES (bit 8), one AER outstanding
            assertEquals(List.of(1, 2), activeList(f));

            assertTrue(table(f).setAttached(2, false));
            assertEquals(List.of(2), linuxHandlesNotice(f, 1));
            assertEquals(List.of(1), activeList(f));
            // A detached NSID is inactive: Identify Namespace succeeds with a zero-filled structure (§5.15.2).
            assertTrue(java.util.Arrays.equals(new byte[4096], f.driver.identify(0x00, 2)), "a detached NSID is inactive");

            // The log read unmasked the notice: the next change is reported to the re-armed AER.
            assertTrue(table(f).setAttached(2, true));
            assertEquals(List.of(2), linuxHandlesNotice(f, 2));
            assertEquals(List.of(1, 2), activeList(f));
            assertEquals(List.of(), changedLog(f, false), "the read cleared the list");
            noEventBeyond(f, 2);
        }
    }

    @Test
    void maskedUntilTheLogIsReadWithRaeCleared() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M,ram:8M,ram:8M")) {
            f.driver.bringUp(1, 16, false);
            table(f).setAttached(3, false);
            assertEquals(NS_CHANGED_DW0, awaitEvent(f, 1).dw0());
            f.driver.submitAer(LinuxLikeDriver.AER_CID);

            // Unread: more changes go into the list, no second event.
            table(f).setAttached(2, false);
            table(f).setAttached(3, true);
            noEventBeyond(f, 1);
            // RAE = 1: the list is shown and kept, the event stays masked.
            assertEquals(List.of(2, 3), changedLog(f, true));
            table(f).setAttached(2, true);
            noEventBeyond(f, 1);
            // RAE = 0: shown once more (ascending, each NSID once), then cleared; the notice is unmasked.
            assertEquals(List.of(2, 3), changedLog(f, false));
            assertEquals(List.of(), changedLog(f, false));
            noEventBeyond(f, 1);
            table(f).setAttached(1, false);
            assertEquals(NS_CHANGED_DW0, awaitEvent(f, 2).dw0());
            assertEquals(List.of(1), changedLog(f, false));
        }
    }

    @Test
    void notSentWhileBit8IsDisabledButStillListed() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M,ram:8M")) {
            f.driver.bringUp(1, 16, false);
            assertTrue(f.driver.admin(Command.setFeatures(0x0B, 0)).ok()); // the host turns the notice off
            table(f).setAttached(2, false);
            noEventBeyond(f, 0);
            assertEquals(List.of(2), changedLog(f, false), "the list records changes whatever the configuration");

            assertTrue(f.driver.admin(Command.setFeatures(0x0B, 1 << 8)).ok());
            noEventBeyond(f, 0); // enabling reports nothing of the past
            table(f).setAttached(2, true);
            assertEquals(NS_CHANGED_DW0, awaitEvent(f, 1).dw0());
            assertEquals(List.of(2), changedLog(f, false));
        }
    }

    @Test
    void moreThan1024ChangesAreTheSingleEntryFFFFFFFFh() {
        // The options allow 256 namespaces; a subsystem with more is simulated by recording the changes the
        // table listener would record, and one real change raises the event.
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M,ram:8M")) {
            f.driver.bringUp(1, 16, false);
            for (int nsid = 3; nsid <= 1025; nsid++) {
                f.controller.asyncEvents().changedNamespaces().add(nsid);
            }
            table(f).setAttached(2, false);
            assertEquals(NS_CHANGED_DW0, awaitEvent(f, 1).dw0());
            List<Integer> full = changedLog(f, true);
            assertEquals(1024, full.size(), "exactly 1024 still fit");
            assertEquals(IntStream.rangeClosed(2, 1025).boxed().toList(), full, "ascending");
            table(f).setAttached(1, false);
            assertEquals(List.of(0xFFFF_FFFF), changedLog(f, false));
            assertEquals(List.of(), changedLog(f, false), "the overflow read cleared everything it stood for");
        }
    }

    @Test
    void controllerResetKeepsTheUnreadListAndUnmasksTheNotice() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M,ram:8M,ram:8M")) {
            f.driver.bringUp(1, 16, false);
            table(f).setAttached(2, false);
            assertEquals(NS_CHANGED_DW0, awaitEvent(f, 1).dw0());
            f.driver.submitAer(LinuxLikeDriver.AER_CID);
            table(f).setAttached(3, false);               // masked: listed, not notified

            // nvme_reset_work: disable (the outstanding AER is dropped without a completion), then the whole
            // bring-up again, which re-enables the notice and submits a fresh AER.
            f.driver.disable();
            assertEquals(0, f.controller.asyncEvents().outstanding());
            f.driver.bringUp(1, 16, false);
            noEventBeyond(f, 0);                          // nothing new changed: Linux rescans after a reset anyway
            table(f).setAttached(2, true);
            assertEquals(NS_CHANGED_DW0, awaitEvent(f, 1).dw0(), "the reset cleared the mask");
            assertEquals(List.of(2, 3), changedLog(f, false), "changes since the last read, across the reset");
        }
    }
}
