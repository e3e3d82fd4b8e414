package io.javadevices.nvme.driver;

import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.GuestMemoryException;
import io.javadevices.pci.MsixTable;
import io.javadevices.pci.PciDevice;
import io.javadevices.pci.testkit.InterruptRecorder;
import io.javadevices.pci.testkit.TestHost;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A model of the Linux 6.x nvme-pci driver for unit tests (drivers/nvme/host/pci.c, core.c), driving a
 * controller through {@link TestHost}: {@code nvme_pci_enable}/{@code nvme_enable_ctrl} bring-up,
 * Identify, Set Features Number of Queues, Create CQ/SQ with MSI-X vectors, Doorbell Buffer Config
 * after the I/O queues exist (6.8+ order), and doorbells exactly as {@code nvme_dbbuf_update_and_check_event}
 * rings them: write the shadow entry, full barrier, read EventIdx, MMIO only if
 * {@code nvme_dbbuf_need_event(event_idx, new, old)}. Counts its MMIO doorbell writes.
 */
public final class LinuxLikeDriver {
    public static final int ADMIN_DEPTH = 32; // NVME_AQ_DEPTH
    public static final int AER_CID = 0x7FF0;
    private static final Duration TIMEOUT = Duration.ofSeconds(10);

    private final TestHost host;
    private final GuestMemory memory;
    private final AtomicLong mmioDoorbells = new AtomicLong();
    private final long adminSq;
    private final long adminCq;
    private final long dataPage;
    private HostQueue admin;
    private final List<HostQueue> ioQueues = new ArrayList<>();
    private final List<Completion> asyncCompletions = new ArrayList<>();
    private long shadowPage, eventIdxPage;
    private boolean dbbufSupported;
    private boolean msixTableProgrammed;

    public LinuxLikeDriver(TestHost host) {
        this.host = host;
        this.memory = host.memory();
        this.adminSq = host.allocate(4096, 65536); // aligned for any CC.MPS up to 64 KiB
        this.adminCq = host.allocate(4096, 65536);
        this.dataPage = host.allocatePages(2);
    }

    public GuestMemory memory() {
        return memory;
    }

    public TestHost host() {
        return host;
    }

    public InterruptRecorder interrupts() {
        return host.interrupts();
    }

    public HostQueue adminQueue() {
        return admin;
    }

    public List<HostQueue> ioQueues() {
        return ioQueues;
    }

    public HostQueue ioQueue(int qid) {
        return ioQueues.get(qid - 1);
    }

    /** MMIO doorbell writes issued by this driver (SQ + CQ, all queues). */
    public long mmioDoorbellWrites() {
        return mmioDoorbells.get();
    }

    public long shadowPage() {
        return shadowPage;
    }

    public long eventIdxPage() {
        return eventIdxPage;
    }

    String controllerStats() {
        return host.device().statistics().toString();
    }

    // ------------------------------------------------------------------ registers

    public int readReg32(int offset) {
        return host.mmioRead32(0, offset);
    }

    public long readReg64(int offset) {
        // Linux lo_hi_readq: two 32-bit reads, low first.
        long lo = host.mmioRead32(0, offset) & 0xFFFF_FFFFL;
        long hi = host.mmioRead32(0, offset + 4) & 0xFFFF_FFFFL;
        return hi << 32 | lo;
    }

    public void writeReg32(int offset, int value) {
        host.mmioWrite32(0, offset, value);
    }

    public void writeReg64(int offset, long value) {
        // lo_hi_writeq
        host.mmioWrite32(0, offset, (int) value);
        host.mmioWrite32(0, offset + 4, (int) (value >>> 32));
    }

    void mmioDoorbell(int qid, boolean completion, int value) {
        mmioDoorbells.incrementAndGet();
        host.mmioWrite32(0, 0x1000 + (2L * qid + (completion ? 1 : 0)) * 4, value);
    }

    /** Linux nvme_dbbuf_need_event: {@code (u16)(new - event_idx - 1) < (u16)(new - old)}. */
    public static boolean needEvent(int eventIdx, int newIdx, int oldIdx) {
        return ((newIdx - eventIdx - 1) & 0xFFFF) < ((newIdx - oldIdx) & 0xFFFF);
    }

    /**
     * nvme_dbbuf_update_and_check_event: wmb (release store of the shadow entry), read old, write new,
     * mb() (full fence), read EventIdx; true if the MMIO doorbell must be written.
     */
    boolean dbbufUpdateAndCheckEvent(int value, long dbAddr, long eiAddr) {
        try {
            int old = memory.loadIntAcquire(dbAddr);
            memory.storeIntRelease(dbAddr, value);
            GuestMemory.fullFence();
            int eventIdx = memory.loadIntAcquire(eiAddr);
            return needEvent(eventIdx & 0xFFFF, value & 0xFFFF, old & 0xFFFF);
        } catch (GuestMemoryException e) {
            throw new IllegalStateException(e);
        }
    }

    // ------------------------------------------------------------------ bring-up

    private void waitReady(boolean ready) {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (true) {
            int csts = readReg32(0x1C);
            if (csts == -1) {
                throw new AssertionError("CSTS reads all ones: device gone");
            }
            if (ready && (csts & 2) != 0) {
                throw new AssertionError("controller fatal status (CSTS.CFS) while enabling");
            }
            if (((csts & 1) != 0) == ready) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timeout waiting for CSTS.RDY=" + ready);
            }
            Thread.onSpinWait();
        }
    }

    /** Programs and unmasks MSI-X table entries 0..vectors-1 (what the PCI core does for the driver). */
    public void enableMsix(int vectors) {
        host.enableMsix();
        for (int v = 0; v < vectors; v++) {
            host.mmioWrite32(4, 16L * v, 0xFEE0_0000);
            host.mmioWrite32(4, 16L * v + 4, 0);
            host.mmioWrite32(4, 16L * v + 8, 0x4000 + v);
            host.mmioWrite32(4, 16L * v + 12, 0);
        }
        if (!msixTableProgrammed) {
            PciDevice dev = host.device();
            try {
                MsixTable table = (MsixTable) dev.getClass().getMethod("msixTable").invoke(dev);
                host.useMsixTable(table);
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(e);
            }
            msixTableProgrammed = true;
        }
    }

    /** nvme_disable_ctrl (reset): CC.EN = 0, wait !RDY. */
    public void disable() {
        int cc = readReg32(0x14);
        writeReg32(0x14, cc & ~1);
        waitReady(false);
    }

    /** nvme_pci_configure_admin_queue + nvme_enable_ctrl. */
    public void enable() {
        enable(0);
    }

    /** @param mps CC.MPS (0 = 4 KiB pages) */
    public void enable(int mps) {
        long cap = readReg64(0x00);
        if (((cap >>> 48) & 0xF) != 0) {
            throw new AssertionError("Minimum device page size too large");
        }
        enableMsix(1);
        if ((readReg32(0x14) & 1) != 0 || (readReg32(0x1C) & 1) != 0) {
            disable();
        }
        try {
            memory.fill(adminSq, 4096, (byte) 0);
            memory.fill(adminCq, 4096, (byte) 0);
        } catch (GuestMemoryException e) {
            throw new IllegalStateException(e);
        }
        writeReg32(0x24, (ADMIN_DEPTH - 1) << 16 | (ADMIN_DEPTH - 1));
        writeReg64(0x28, adminSq);
        writeReg64(0x30, adminCq);
        int cc = 6 << 16 | 4 << 20 | mps << 7; // IOSQES, IOCQES, MPS; CSS = NVM, AMS = RR, SHN = 0
        writeReg32(0x14, cc);
        readReg64(0x00); // CAP may change after the first CC write
        writeReg32(0x14, cc | 1);
        waitReady(true);
        admin = new HostQueue(this, 0, ADMIN_DEPTH, adminSq, adminCq, 0);
        ioQueues.clear();
        asyncCompletions.clear();
    }

    /** nvme_shutdown_ctrl: CC.SHN = 01b, wait CSTS.SHST = 10b. */
    public void shutdown() {
        int cc = readReg32(0x14);
        writeReg32(0x14, (cc & ~(3 << 14)) | 1 << 14);
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (((readReg32(0x1C) >>> 2) & 3) != 2) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("shutdown did not complete");
            }
            Thread.onSpinWait();
        }
    }

    // ------------------------------------------------------------------ admin commands

    /** Submits an admin command (MMIO doorbell, never shadowed) and waits for its completion. */
    public synchronized Completion admin(Command c) {
        int cid = admin.submit(c);
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (true) {
            // Keep every other completion of the batch (an AER can be posted right after this command's).
            Completion mine = null;
            for (Completion done : admin.reap()) {
                if (done.cid() == cid && mine == null) {
                    mine = done;
                } else {
                    asyncCompletions.add(done);
                }
            }
            if (mine != null) {
                return mine;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("admin command 0x" + Integer.toHexString(c.opcode()) + " timed out; " + controllerStats());
            }
            Thread.onSpinWait();
        }
    }

    /** Submits an Asynchronous Event Request (no wait), as nvme_submit_async_event does. */
    public synchronized void submitAer(int cid) {
        admin.queueWithCid(Command.of(0x0C), cid);
        admin.ringSq();
    }

    /** Completions of AERs (or strays) collected while waiting for other admin commands. */
    public synchronized List<Completion> asyncCompletions() {
        asyncCompletions.addAll(admin.reap());
        return new ArrayList<>(asyncCompletions);
    }

    /** Waits up to {@code timeout} for the first AER completion and returns its DW0 (-1 if none came). */
    public int awaitAsyncEvent(java.time.Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        List<Completion> events;
        do {
            events = asyncCompletions();
        } while (events.isEmpty() && System.nanoTime() < deadline);
        return events.isEmpty() ? -1 : events.get(0).dw0();
    }

    /** Identify into the driver's scratch page; returns the 4096 bytes. */
    public byte[] identify(int cns, int nsid) {
        Completion c = admin(Command.identify(cns, nsid, dataPage));
        if (!c.ok()) {
            throw new AssertionError("identify CNS " + cns + " failed: " + c);
        }
        return readData(4096);
    }

    public Completion identifyStatus(int cns, int nsid) {
        return admin(Command.identify(cns, nsid, dataPage));
    }

    public byte[] readData(int length) {
        byte[] out = new byte[length];
        try {
            memory.read(dataPage, out, 0, length);
        } catch (GuestMemoryException e) {
            throw new IllegalStateException(e);
        }
        return out;
    }

    public long dataPage() {
        return dataPage;
    }

    /** nvme_set_queue_count: returns min(NSQA, NCQA) + 1 or 0 on an NVMe error. */
    public int setNumberOfQueues(int wanted) {
        Completion c = admin(Command.setFeatures(0x07, (wanted - 1) | (wanted - 1) << 16));
        if (!c.ok()) {
            return 0;
        }
        int nsqa = c.dw0() & 0xFFFF, ncqa = c.dw0() >>> 16;
        return Math.min(wanted, Math.min(nsqa, ncqa) + 1);
    }

    /** nvme_dbbuf_dma_alloc: allocate both pages once, memset them on later resets. */
    public void allocateDbbuf() {
        if (shadowPage == 0) {
            shadowPage = host.allocatePages(1);
            eventIdxPage = host.allocatePages(1);
        } else {
            try {
                memory.fill(shadowPage, 4096, (byte) 0);
                memory.fill(eventIdxPage, 4096, (byte) 0);
            } catch (GuestMemoryException e) {
                throw new IllegalStateException(e);
            }
        }
    }

    /** nvme_create_queue: CQ (IEN, IV) then SQ; nvme_dbbuf_init points the queue at its slots. */
    public HostQueue createQueuePair(int qid, int depth, int vector) {
        long cq = host.allocate(Math.max(4096, 16L * depth), 4096);
        long sq = host.allocate(Math.max(4096, 64L * depth), 4096);
        Completion c = admin(Command.createCq(qid, depth, cq, vector, true));
        if (!c.ok()) {
            throw new AssertionError("create CQ " + qid + ": " + c);
        }
        c = admin(Command.createSq(qid, depth, sq, qid));
        if (!c.ok()) {
            throw new AssertionError("create SQ " + qid + ": " + c);
        }
        HostQueue q = new HostQueue(this, qid, depth, sq, cq, vector);
        if (shadowPage != 0) {
            attachShadow(q);
        }
        ioQueues.add(q);
        return q;
    }

    /** Creates CQ {@code qid} of {@code cqDepth} and SQ {@code qid} of {@code sqDepth} (different depths). */
    public HostQueue createQueuePair(int qid, int sqDepth, int cqDepth, int vector) {
        long cq = host.allocate(Math.max(4096, 16L * cqDepth), 4096);
        long sq = host.allocate(Math.max(4096, 64L * sqDepth), 4096);
        if (!admin(Command.createCq(qid, cqDepth, cq, vector, true)).ok() || !admin(Command.createSq(qid, sqDepth, sq, qid)).ok()) {
            throw new AssertionError("queue creation failed");
        }
        HostQueue q = new HostQueue(this, qid, sqDepth, cqDepth, sq, cq, vector);
        if (shadowPage != 0) {
            attachShadow(q);
        }
        ioQueues.add(q);
        return q;
    }

    /**
     * Re-issues Doorbell Buffer Config with fresh pages (not something Linux does; spec-legal): copies
     * the current shadow values into the new page, sends 0x7C and re-points every queue.
     * Returns the old {shadow, eventIdx} pages.
     */
    public long[] reissueDbbuf() {
        long[] old = {shadowPage, eventIdxPage};
        long newShadow = host.allocatePages(1);
        long newEvent = host.allocatePages(1);
        try {
            byte[] copy = new byte[4096];
            memory.read(shadowPage, copy, 0, 4096);
            memory.write(newShadow, copy, 0, 4096);
        } catch (GuestMemoryException e) {
            throw new IllegalStateException(e);
        }
        shadowPage = newShadow;
        eventIdxPage = newEvent;
        Completion c = admin(Command.dbbuf(newShadow, newEvent));
        if (!c.ok()) {
            throw new AssertionError("re-issue failed: " + c);
        }
        ioQueues.forEach(this::attachShadow);
        return old;
    }

    /**
     * Sends Doorbell Buffer Config with freshly allocated, zeroed pages (what Linux's nvme_dbbuf_dma_alloc
     * gives) while I/O queues already exist and have been used through MMIO doorbells or older pages, then
     * points every queue at its new slots. Returns the completion.
     */
    public Completion dbbufWithFreshPages() {
        shadowPage = host.allocatePages(1);
        eventIdxPage = host.allocatePages(1);
        Completion c = sendDbbuf();
        if (c.ok()) {
            ioQueues.forEach(this::attachShadow);
        }
        return c;
    }

    /** Uses explicit pages for the next DBBUF (tests placing them in another memory region). */
    public void useDbbufPages(long shadow, long eventIdx) {
        shadowPage = shadow;
        eventIdxPage = eventIdx;
    }

    /**
     * Creates SQ {@code qid} bound to the existing CQ of {@code cqOwner} (several SQs sharing one CQ).
     * Reap its completions through {@code cqOwner}; use explicit CIDs ≥ the queue depths.
     */
    public HostQueue createSharedSq(int qid, int depth, HostQueue cqOwner) {
        long sq = host.allocate(Math.max(4096, 64L * depth), 4096);
        Completion c = admin(Command.createSq(qid, depth, sq, cqOwner.qid));
        if (!c.ok()) {
            throw new AssertionError("create shared SQ " + qid + ": " + c);
        }
        HostQueue q = new HostQueue(this, qid, depth, cqOwner.cqDepth, sq, cqOwner.cqBase, cqOwner.vector);
        if (shadowPage != 0) {
            attachShadow(q);
        }
        return q;
    }

    void attachShadow(HostQueue q) {
        q.dbSq = shadowPage + 8L * q.qid;
        q.dbCq = shadowPage + 8L * q.qid + 4;
        q.eiSq = eventIdxPage + 8L * q.qid;
        q.eiCq = eventIdxPage + 8L * q.qid + 4;
    }

    /** nvme_dbbuf_set: on failure free the pages and clear every queue's pointers. */
    public Completion sendDbbuf() {
        Completion c = admin(Command.dbbuf(shadowPage, eventIdxPage));
        if (!c.ok()) {
            shadowPage = 0;
            eventIdxPage = 0;
            ioQueues.forEach(HostQueue::clearShadowPointers);
        }
        return c;
    }

    /**
     * The whole nvme_probe / nvme_reset_work sequence: enable, Identify Controller, effects and SMART
     * logs, Timestamp (if ONCS bit 6), Number of Queues, DBBUF allocation (if OACS bit 8 and {@code useDbbuf}), MSI-X vectors,
     * queue pairs with IV = qid, DBBUF command, AEN config + one AER, namespace scan.
     *
     * @return the number of I/O queue pairs created
     */
    public int bringUp(int queues, int depth, boolean useDbbuf) {
        enable();
        byte[] id = identify(0x01, 0);
        int oacs = (id[256] & 0xFF) | (id[257] & 0xFF) << 8;
        dbbufSupported = (oacs & 0x100) != 0;
        if ((id[261] & 2) != 0) {
            admin(Command.getLogPage(0x05, 0, 4096, dataPage));
        }
        admin(Command.getLogPage(0x02, 0xFFFF_FFFF, 512, dataPage));
        configureTimestamp(id);
        int granted = setNumberOfQueues(queues);
        if (dbbufSupported && useDbbuf) {
            allocateDbbuf();
        } else {
            shadowPage = 0;
            eventIdxPage = 0;
        }
        enableMsix(granted + 1);
        for (int qid = 1; qid <= granted; qid++) {
            createQueuePair(qid, depth, qid);
        }
        if (shadowPage != 0 && granted > 0) {
            Completion c = sendDbbuf();
            if (!c.ok()) {
                throw new AssertionError("unable to set dbbuf: " + c);
            }
        }
        admin(Command.setFeatures(0x0B, 1 << 8));
        submitAer(AER_CID);
        byte[] list = identify(0x02, 0);
        int nsid = (list[0] & 0xFF) | (list[1] & 0xFF) << 8;
        if (nsid != 0) {
            identify(0x03, nsid);
            identify(0x00, nsid);
        }
        return granted;
    }

    /**
     * nvme_configure_timestamp: with ONCS bit 6, Set Features Timestamp (0Eh) to the wall clock in milliseconds,
     * an 8-byte structure through PRP1; an NVMe error is only warned about, as Linux does.
     */
    private void configureTimestamp(byte[] id) {
        int oncs = (id[520] & 0xFF) | (id[521] & 0xFF) << 8;
        if ((oncs & 1 << 6) == 0) {
            return;
        }
        try {
            memory.writeLong(dataPage, System.currentTimeMillis());
        } catch (GuestMemoryException e) {
            throw new IllegalStateException(e);
        }
        admin(Command.setFeatures(0x0E, 0).prp1(dataPage));
    }

    /** nvme_dev_disable for a reset: delete SQs then CQs, then CC.EN = 0. */
    public void teardown() {
        for (HostQueue q : ioQueues) {
            admin(Command.deleteSq(q.qid));
        }
        for (HostQueue q : ioQueues) {
            admin(Command.deleteCq(q.qid));
        }
        disable();
        ioQueues.clear();
    }

    // ------------------------------------------------------------------ PRP helpers

    /**
     * Builds PRP1/PRP2 for {@code length} bytes at the page list {@code pages} (first page may start at
     * {@code offset}), writing PRP list pages into {@code listArea} (enough pages for the list), with
     * chaining when a list page fills up (last entry points to the next list page).
     */
    public void setPrps(Command c, long[] pages, int offset, int length, long listArea) {
        int pageSize = 4096;
        c.prp1(pages[0] + offset);
        int first = Math.min(length, pageSize - offset);
        int remaining = length - first;
        if (remaining == 0) {
            c.prp2(0);
            return;
        }
        int needed = (remaining + pageSize - 1) / pageSize;
        if (needed == 1) {
            c.prp2(pages[1]);
            return;
        }
        c.prp2(listArea);
        long list = listArea;
        int slot = 0;
        try {
            for (int i = 1; i <= needed; i++) {
                boolean last = i == needed;
                if (slot == 511 && !last) {
                    long next = list + pageSize;
                    memory.writeLong(list + 8L * slot, next);
                    list = next;
                    slot = 0;
                }
                memory.writeLong(list + 8L * slot++, pages[i]);
            }
        } catch (GuestMemoryException e) {
            throw new IllegalStateException(e);
        }
    }
}
