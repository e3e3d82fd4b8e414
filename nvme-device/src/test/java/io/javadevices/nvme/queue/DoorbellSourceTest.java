package io.javadevices.nvme.queue;

import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.GuestMemoryException;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** One doorbell source per queue: validation, reporting, EventIdx publish and the fallback of each kind. */
class DoorbellSourceTest {
    private static final long SHADOW = 0x10_0000L;
    private static final long EVENT_IDX = 0x20_0000L;
    private static final int QID = 1;
    private static final int ENTRIES = 16;

    private final GuestMemory memory = new GuestMemory();
    private final QueueStats stats = new QueueStats();
    private final List<Integer> rejected = new ArrayList<>();
    private final DoorbellSource.Rejects rejects = (qid, value) -> rejected.add(value);

    DoorbellSourceTest() {
        memory.map(SHADOW, MemorySegment.ofArray(new long[512]));
        memory.map(EVENT_IDX, MemorySegment.ofArray(new long[512]));
    }

    private ShadowDoorbell slot(boolean completion) {
        return new ShadowDoorbell(memory, SHADOW, EVENT_IDX, QID, completion);
    }

    private void hostWritesShadow(boolean completion, int value) throws GuestMemoryException {
        memory.storeIntRelease(SHADOW + 8L * QID + (completion ? 4 : 0), value);
    }

    private int eventIdx(boolean completion) throws GuestMemoryException {
        return memory.loadIntAcquire(EVENT_IDX + 8L * QID + (completion ? 4 : 0));
    }

    private static DoorbellPage page(MemorySegment segment) {
        return new DoorbellPage(() -> segment);
    }

    @Test
    void mmioTailIsTheSourceUntilAShadowIsAttached() throws GuestMemoryException {
        SubmissionQueue sq = new SubmissionQueue(QID, ENTRIES, 0, new CompletionQueue(QID, ENTRIES, 0, 0, true), 0);
        sq.mmioTail(5);
        assertEquals(5, sq.loadTail(stats, rejects));
        assertFalse(sq.shadowed());
        assertFalse(sq.publishEventIdx(5), "no EventIdx without a shadow slot");

        hostWritesShadow(false, 7);
        sq.useShadow(slot(false));
        assertTrue(sq.shadowed());
        assertEquals(7, sq.loadTail(stats, rejects), "the shadow slot is authoritative");
        assertEquals(1, stats.shadowSq, "a tail seen only in the shadow slot is counted");
        sq.mmioTail(2); // a late MMIO write with an older tail
        assertEquals(7, sq.loadTail(stats, rejects), "an MMIO write never regresses a shadowed tail");
        assertTrue(sq.publishEventIdx(7));
        assertEquals(7, eventIdx(false));
    }

    @Test
    void invalidShadowTailIsReportedOnceAndNeverUsed() throws GuestMemoryException {
        SubmissionQueue sq = new SubmissionQueue(QID, ENTRIES, 0, new CompletionQueue(QID, ENTRIES, 0, 0, true), 0);
        sq.useShadow(slot(false));
        hostWritesShadow(false, ENTRIES); // one past the last slot
        for (int look = 0; look < 3; look++) {
            assertEquals(DoorbellSource.INVALID, sq.loadTail(stats, rejects));
        }
        assertEquals(List.of(ENTRIES), rejected, "one report per new invalid value, not per look");
        hostWritesShadow(false, 3);
        assertEquals(3, sq.loadTail(stats, rejects));
        hostWritesShadow(false, ENTRIES);
        assertEquals(DoorbellSource.INVALID, sq.loadTail(stats, rejects));
        assertEquals(List.of(ENTRIES, ENTRIES), rejected, "the same bad value again after a good one is new");
    }

    @Test
    void unreachableShadowPageFallsBackToMmioWithoutReplayingTheStaleMmioTail() throws GuestMemoryException {
        SubmissionQueue sq = new SubmissionQueue(QID, ENTRIES, 0, new CompletionQueue(QID, ENTRIES, 0, 0, true), 0);
        sq.mmioTail(1); // the last time the host rang (nvme_dbbuf_need_event); the shadow moved on since
        sq.useShadow(slot(false));
        hostWritesShadow(false, 4);
        assertEquals(4, sq.loadTail(stats, rejects));
        memory.unmap(SHADOW, 4096);
        assertEquals(4, sq.loadTail(stats, rejects), "BAR0 continues from the last shadow tail, not the stale 1");
        assertFalse(sq.shadowed(), "back on the MMIO doorbell");
        sq.mmioTail(6);
        assertEquals(6, sq.loadTail(stats, rejects));
        assertTrue(rejected.isEmpty());
    }

    @Test
    void aBar0WriteAfterTheLastShadowLookWinsOverTheShadowValue() throws GuestMemoryException {
        SubmissionQueue sq = new SubmissionQueue(QID, ENTRIES, 0, new CompletionQueue(QID, ENTRIES, 0, 0, true), 0);
        sq.useShadow(slot(false));
        hostWritesShadow(false, 4);
        assertEquals(4, sq.loadTail(stats, rejects));
        memory.unmap(SHADOW, 4096);
        sq.mmioTail(7); // the host lost its shadow pointer and rang BAR0 before the worker looked again
        assertEquals(7, sq.loadTail(stats, rejects));
    }

    @Test
    void unreachableEventIdxPageFallsBackOnPublish() {
        SubmissionQueue sq = new SubmissionQueue(QID, ENTRIES, 0, new CompletionQueue(QID, ENTRIES, 0, 0, true), 0);
        sq.useShadow(slot(false));
        memory.unmap(EVENT_IDX, 4096);
        assertFalse(sq.publishEventIdx(3));
        assertFalse(sq.shadowed());
    }

    @Test
    void polledQueueWithShadowFallsBackToThePolledPage() throws GuestMemoryException {
        MemorySegment bar = MemorySegment.ofArray(new long[DoorbellPage.SIZE / 8]);
        SubmissionQueue sq = new SubmissionQueue(QID, ENTRIES, 0, new CompletionQueue(QID, ENTRIES, 0, 0, true), 0);
        sq.useShadow(slot(false)); // the controller attaches the shadow before the polled page
        sq.usePolled(page(bar));
        assertTrue(sq.shadowed());
        assertTrue(sq.polled());
        hostWritesShadow(false, 2);
        GuestMemory.storeIntRelease(bar, 8L * QID, 9);
        assertEquals(2, sq.loadTail(stats, rejects));
        memory.unmap(SHADOW, 4096);
        assertEquals(9, sq.loadTail(stats, rejects));
        assertTrue(sq.polled());
        GuestMemory.storeIntRelease(bar, 8L * QID, 0x1234);
        assertEquals(DoorbellSource.INVALID, sq.loadTail(stats, rejects));
        assertEquals(List.of(0x1234), rejected);
    }

    @Test
    void knownTailPrefersAValidSourceThenItsFallbackThenMmio() throws GuestMemoryException {
        MemorySegment bar = MemorySegment.ofArray(new long[DoorbellPage.SIZE / 8]);
        SubmissionQueue sq = new SubmissionQueue(QID, ENTRIES, 0, new CompletionQueue(QID, ENTRIES, 0, 0, true), 0);
        sq.mmioTail(1);
        sq.usePolled(page(bar));
        sq.useShadow(slot(false));
        hostWritesShadow(false, 0xFFFF);
        GuestMemory.storeIntRelease(bar, 8L * QID, 5);
        assertEquals(5, sq.knownTail(), "invalid shadow: the polled page");
        GuestMemory.storeIntRelease(bar, 8L * QID, -1);
        assertEquals(1, sq.knownTail(), "both invalid: the BAR0 value");
        hostWritesShadow(false, 3);
        assertEquals(3, sq.knownTail());
    }

    @Test
    void hostHeadValidatesTheShadowHead() throws GuestMemoryException {
        CompletionQueue cq = new CompletionQueue(QID, ENTRIES, 0, 0, true);
        cq.mmioHead(2);
        assertEquals(2, cq.hostHead());
        assertTrue(cq.useShadow(slot(true), 0xFFFF));
        assertEquals(0xFFFF, eventIdx(true), "CQ EventIdx armed at association");
        hostWritesShadow(true, 4);
        assertEquals(4, cq.hostHead());
        hostWritesShadow(true, ENTRIES + 3);
        assertEquals(-1, cq.hostHead(), "an invalid shadow head is unknown, not a head");
        memory.unmap(SHADOW, 4096);
        assertEquals(-1, cq.hostHead());
    }

    @Test
    void unreachableCqShadowKeepsTheQueueOnMmio() {
        CompletionQueue cq = new CompletionQueue(QID, ENTRIES, 0, 0, true);
        memory.unmap(EVENT_IDX, 4096);
        assertFalse(cq.useShadow(slot(true), 0xFFFF));
        cq.mmioHead(3);
        assertEquals(3, cq.hostHead());
        assertFalse(cq.publishEventIdx(3));
    }

    @Test
    void fullCqReadsAValidShadowHeadAndReportsAnInvalidOneOnce() throws GuestMemoryException {
        long ring = 0x30_0000L;
        memory.map(ring, MemorySegment.ofArray(new long[512]));
        CompletionQueue cq = new CompletionQueue(QID, 4, ring, 0, true);
        assertTrue(cq.useShadow(slot(true), 0xFFFF));
        for (int i = 0; i < 3; i++) {
            assertTrue(cq.post(memory, QID, 0, i, 0, 0, stats, rejects));
        }
        assertFalse(cq.post(memory, QID, 0, 3, 0, 0, stats, rejects), "full: 3 of 4 entries");
        hostWritesShadow(true, 9); // invalid for 4 entries
        assertFalse(cq.headMoved(stats, rejects));
        assertFalse(cq.post(memory, QID, 0, 3, 0, 0, stats, rejects), "an invalid head frees nothing");
        assertEquals(List.of(9), rejected, "one report per new invalid head, not per look");
        hostWritesShadow(true, 2);
        assertTrue(cq.headMoved(stats, rejects));
        assertEquals(1, stats.shadowCq);
        assertTrue(cq.post(memory, QID, 0, 3, 0, 0, stats, rejects));
        assertTrue(cq.post(memory, QID, 0, 4, 0, 0, stats, rejects));
        memory.unmap(SHADOW, 4096); // page gone while full: BAR0 continues from the last shadow head, no fatal error
        assertFalse(cq.post(memory, QID, 0, 5, 0, 0, stats, rejects), "the stale BAR0 head 0 must not free entries 2, 3, 0");
        assertEquals(2, cq.hostHead());
        cq.mmioHead(0); // the host consumed 2 and 3 and says so through BAR0
        assertTrue(cq.headMoved(stats, rejects));
        assertTrue(cq.post(memory, QID, 0, 5, 0, 0, stats, rejects));
    }
}
