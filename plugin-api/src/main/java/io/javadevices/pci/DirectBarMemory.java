package io.javadevices.pci;

import java.lang.foreign.MemorySegment;
import java.util.Optional;

/**
 * Lets a device keep part of a BAR in plain memory that the guest's loads and stores reach directly:
 * no MMIO callback, no exit, no message. The device polls that memory instead of being called. Made
 * for NVMe doorbells: the guest's doorbell writes become plain stores the queue workers read, the
 * shape SPDK's vfio-user target uses ("polled doorbells").
 *
 * <p>How a host provides it: the vfio-user server backs the window with a memfd and reports it as a
 * sparse-mmap area of the region, which QEMU maps into the guest; a Java VMM would map the segment as
 * a memory slot of its own. A host that cannot do either returns {@link Optional#empty()} (see
 * {@link #NONE}) and the device keeps using MMIO callbacks.
 *
 * <p>Rules for devices:
 * <ul>
 *   <li>Ask while constructing the device, before its {@link ConfigSpace} is handed to the host: the
 *       host fixes its region layout from the answers.</li>
 *   <li>{@code offset} and {@code size} are multiples of {@link #PAGE} (host mappings are page-sized)
 *       and lie inside the BAR.</li>
 *   <li>The memory starts zeroed and is shared with the guest: treat every value read from it as
 *       untrusted input and re-validate it on each read.</li>
 *   <li>Accesses the host cannot send to the memory (e.g. a client that declined the mapping) still
 *       arrive at the BAR's {@link MmioHandler}; the handler must then store them into the same
 *       memory, so the device has one source of truth.</li>
 *   <li>Read {@link Window#memory()} again in every {@link PciDevice#reset()}, after stopping
 *       whatever touches the window, and use only that segment until the next reset (see below).</li>
 * </ul>
 *
 * <p><b>Fresh memory per session.</b> The guest's mapping of a window is not the device's to revoke: a
 * former client (a VM that disconnected but kept its mapping) could still store into the old pages. So
 * a host that serves one client after another gives each window new, zeroed memory between them, under
 * one rule: it replaces a window's memory only immediately before it calls {@link PciDevice#reset()}
 * for the new session, and keeps the old memory valid until that {@code reset()} has returned; then it
 * releases it (unmaps it: a later access would crash the process). A device that follows the rule above
 * therefore never touches released memory, and after the reset it never reads a value the previous
 * client can still write. A host that never replaces memory (a single VM) needs to do nothing;
 * {@link Window#memory()} then always returns the same segment.
 */
@FunctionalInterface
public interface DirectBarMemory {

    /** Granularity of windows: the host page size every supported host uses. */
    long PAGE = 4096;

    /**
     * Memory for bytes {@code [offset, offset + size)} of BAR {@code bar} that the guest accesses
     * directly, or empty if this host cannot map BAR memory into the guest.
     *
     * @throws IllegalArgumentException if offset or size is not page-aligned, or size is 0
     */
    Optional<Window> share(int bar, long offset, long size);

    /** One granted window: a handle whose memory the host may replace between sessions (class comment). */
    @FunctionalInterface
    interface Window {
        /**
         * The window's current memory, {@code size} bytes. The same segment until the host replaces it,
         * which it does only right before a {@link PciDevice#reset()}.
         */
        MemorySegment memory();
    }

    /** A host without directly mapped BAR memory: every BAR access goes through the handlers. */
    DirectBarMemory NONE = (bar, offset, size) -> Optional.empty();

    /** Checks the page-alignment rule; hosts call it first. */
    static void checkWindow(int bar, long offset, long size) {
        if (bar < 0 || bar > 5 || offset < 0 || size <= 0 || offset % PAGE != 0 || size % PAGE != 0) {
            throw new IllegalArgumentException("BAR window must be page-aligned and non-empty: bar " + bar
                    + " offset " + offset + " size " + size);
        }
    }
}
