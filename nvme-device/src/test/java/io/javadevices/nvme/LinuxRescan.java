package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.LinuxLikeDriver;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What Linux does with a Namespace Attribute Changed notice (drivers/nvme/host/core.c): nvme_complete_async_event
 * hands it to nvme_handle_aen_notice, which queues nvme_scan_work and re-arms the AER; the scan reads log 04h
 * (nvme_clear_changed_ns_log, RAE = 0), then the active list (Identify CNS 02h) and each namespace's Identify
 * (CNS 00h), whose NSZE nvme_update_ns_info takes as the disk's capacity.
 */
final class LinuxRescan {
    /** AER completion DW0: type 2 (notice), info 00h (Namespace Attribute Changed), log page 04h. */
    static final int NS_CHANGED_DW0 = 0x04_00_02;

    private LinuxRescan() {
    }

    static List<Completion> events(Fixture f) {
        return f.driver.asyncCompletions().stream().filter(c -> c.cid() == LinuxLikeDriver.AER_CID).toList();
    }

    /** Waits for AER completion number {@code n} (1-based), then does the rescan; returns log 04h's NSIDs. */
    static List<Integer> handleNotice(Fixture f, int n) {
        long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        List<Completion> got;
        while ((got = events(f)).size() < n) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("AER completion " + n + " never came; seen " + got);
            }
            Thread.onSpinWait();
        }
        Completion aen = got.get(n - 1);
        assertEquals(0, aen.status(), aen.toString());
        assertEquals(NS_CHANGED_DW0, aen.dw0(), "AER DW0: notice, namespace attribute changed, log 04h");
        f.driver.submitAer(LinuxLikeDriver.AER_CID);
        List<Integer> log = changedLog(f);
        for (int nsid : activeList(f)) {
            f.driver.identify(0x00, nsid);
        }
        return log;
    }

    /** No AER completion beyond the first {@code n}, after two admin round trips (the worker polls events first). */
    static void noEventBeyond(Fixture f, int n) {
        assertTrue(f.driver.admin(Command.getFeatures(0x0B, 0, 0)).ok());
        assertTrue(f.driver.admin(Command.getFeatures(0x0B, 0, 0)).ok());
        assertEquals(n, events(f).size(), "AER completions " + events(f));
    }

    /** Get Log Page 04h, NSID FFFFFFFFh, RAE = 0. */
    static List<Integer> changedLog(Fixture f) {
        Completion done = f.driver.admin(Command.getLogPage(0x04, 0xFFFF_FFFF, 4096, f.driver.dataPage()));
        assertTrue(done.ok(), done.toString());
        return nsids(f.driver.readData(4096));
    }

    /** Identify CNS 02h from NSID 0: the active NSIDs. */
    static List<Integer> activeList(Fixture f) {
        return nsids(f.driver.identify(0x02, 0));
    }

    /** Identify Namespace NSZE (bytes 0-7), 0 for an inactive NSID. */
    static long nsze(Fixture f, int nsid) {
        return ByteBuffer.wrap(f.driver.identify(0x00, nsid)).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
    }

    /** Identify Namespace NCAP and NUSE (bytes 8-15, 16-23). */
    static long[] ncapNuse(Fixture f, int nsid) {
        ByteBuffer b = ByteBuffer.wrap(f.driver.identify(0x00, nsid)).order(ByteOrder.LITTLE_ENDIAN);
        return new long[] {b.getLong(8), b.getLong(16)};
    }

    private static List<Integer> nsids(byte[] page) {
        ByteBuffer b = ByteBuffer.wrap(page).order(ByteOrder.LITTLE_ENDIAN);
        List<Integer> out = new ArrayList<>();
        for (int i = 0; i < 1024 && b.getInt(4 * i) != 0; i++) {
            out.add(b.getInt(4 * i));
        }
        return out;
    }
}
