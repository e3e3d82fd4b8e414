package io.javadevices.vfiouser.server;

import io.javadevices.vfiouser.device.MemfdBarWindows;

/**
 * What the server undoes when a session ends, in the order that keeps device workers safe: guest memory
 * first (workers then get GuestMemoryException), then the client's eventfds, then fresh BAR window
 * memory and a device reset so the next client (a new VM: QEMU never reconnects) starts from power-on
 * state and cannot be reached through the former client's mappings, then the interrupt slots.
 *
 * <p>Each step is guarded against anything it throws, Errors included: a device reset that meets a
 * fault must not stop the remaining steps, nor the caller's closing of the socket and uncounting of the
 * session, which is what lets the next client be served.
 */
final class SessionTeardown {
    private static final System.Logger LOG = System.getLogger(VfioUserServer.class.getName());

    private SessionTeardown() {
    }

    /** Runs on the ending session's thread. Never throws. */
    static void release(VfioUserServer server) {
        guarded("releasing DMA mappings", () -> server.dma().unmapAll());
        guarded("releasing eventfds", () -> server.interrupts().releaseAll());
        guarded("device reset after disconnect", () -> resetForNextClient(server));
        guarded("closing interrupt slots", () -> server.interrupts().closeSlots());
    }

    /**
     * New BAR window memory, then the reset in which the device re-reads its windows (the rule of
     * {@link io.javadevices.pci.DirectBarMemory}); the former pages are unmapped only after a reset that
     * completed: a device whose reset failed may still touch them, so they then stay mapped.
     */
    private static void resetForNextClient(VfioUserServer server) {
        MemfdBarWindows.Retired former = server.barWindows().renew();
        // Draining the client's eventfds throughout the reset wakes a worker a hostile client blocked in
        // write(2) (O_NONBLOCK cleared, counter saturated): the reset joins the workers.
        try (var drain = server.interrupts().drainDuringReset()) {
            server.device().reset(); // PciDevice.reset resets config space and device state
        }
        former.close();
    }

    private static void guarded(String step, Runnable action) {
        try {
            action.run();
        } catch (RuntimeException | Error e) {
            LOG.log(System.Logger.Level.WARNING, step + " failed", e);
        }
    }
}
