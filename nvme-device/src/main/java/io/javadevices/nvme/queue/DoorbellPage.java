package io.javadevices.nvme.queue;

import io.javadevices.pci.DirectBarMemory;
import io.javadevices.pci.GuestMemory;

import java.lang.foreign.MemorySegment;

/**
 * BAR0's doorbell page (offset 1000h, NVMe 1.4 §3.1.10/§3.1.11) kept in memory that the guest stores to
 * directly ({@code doorbells=polled}, granted through {@link io.javadevices.pci.DirectBarMemory}): doorbell
 * writes cause no exit and no message, and the queue workers read the values from here instead of being
 * woken. With CAP.DSTRD = 0 the SQ y tail doorbell is at 8y and the CQ y head doorbell at 8y + 4, so one
 * 4 KiB page holds the doorbells of queues 0..511.
 *
 * <p>The guest can write any slot at any time, so every value read here is validated by the reader
 * ({@link io.javadevices.nvme.spec.Nvme#validDoorbell}), and a queue's slots are zeroed when the queue is
 * created and the whole page on controller reset: a stale tail from an earlier queue must never look
 * like new submissions.
 *
 * <p>The host may give the window new memory between two clients ({@link DirectBarMemory}, "fresh memory
 * per session": a former VM that kept its mapping must not reach the next VM's queues). {@link #clearAll}
 * runs in every controller reset after the workers have stopped, so that is where the page is re-read.
 */
public final class DoorbellPage {
    /** Bytes one page covers; queues beyond 511 cannot exist (options cap queues at 511). */
    public static final int SIZE = 4096;

    private final DirectBarMemory.Window window;
    /** The window's memory as of the last reset; volatile so workers started later see the new page. */
    private volatile MemorySegment page;

    public DoorbellPage(DirectBarMemory.Window window) {
        this.window = window;
        this.page = checked(window.memory());
    }

    private static MemorySegment checked(MemorySegment page) {
        if (page.byteSize() < SIZE) {
            throw new IllegalArgumentException("doorbell page must be " + SIZE + " bytes: " + page.byteSize());
        }
        return page;
    }

    /** The SQ tail the guest wrote for {@code qid} (raw 32-bit value, acquire: SQEs written before it are visible). */
    public int sqTail(int qid) {
        return GuestMemory.loadIntAcquire(page, 8L * qid);
    }

    /** The CQ head the guest wrote for {@code qid} (raw 32-bit value). */
    public int cqHead(int qid) {
        return GuestMemory.loadIntAcquire(page, 8L * qid + 4);
    }

    /** Stores a doorbell that arrived as an MMIO write instead (client did not map the page). */
    public void store(long offsetInPage, int value) {
        GuestMemory.storeIntRelease(page, offsetInPage, value);
    }

    /** Zeroes both doorbells of a queue that is being created. */
    public void clearQueue(int qid) {
        store(8L * qid, 0);
        store(8L * qid + 4, 0);
    }

    /**
     * Controller reset, with no worker running: takes the window's current memory (new if the host
     * replaced it for a new client) and zeroes every doorbell in it.
     */
    public void clearAll() {
        MemorySegment current = checked(window.memory());
        page = current;
        current.asSlice(0, SIZE).fill((byte) 0);
        GuestMemory.fullFence();
    }
}
