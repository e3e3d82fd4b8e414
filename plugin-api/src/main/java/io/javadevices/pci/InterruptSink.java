package io.javadevices.pci;

/**
 * Where a device's interrupts go: implemented by the host (a VMM's interrupt controller, or the
 * vfio-user transport's table of eventfds). The device holds one for its lifetime.
 *
 * <p><b>Threads.</b> Called from any device worker thread, concurrently; implementations are
 * thread-safe and never block (an eventfd write or a queue injection). They never throw: an interrupt
 * that cannot be delivered (vector not set up, MSI-X disabled, client gone) is dropped, and it is the
 * guest's job to have set the vector up before it expects interrupts, as on real hardware.
 */
public interface InterruptSink {

    /** Signals MSI-X vector {@code vector} (edge-triggered; the host applies table masking). */
    void signalMsix(int vector);

    /**
     * True if an MSI-X interrupt on {@code vector} would currently reach the guest (MSI-X enabled, the
     * vector is set up). Devices may use it to skip work; they must still call {@link #signalMsix}.
     */
    boolean isMsixVectorUsable(int vector);

    /** Asserts or deasserts the INTx line (level-triggered). */
    void setIntx(boolean asserted);

    /** A sink that drops everything. */
    InterruptSink NONE = new InterruptSink() {
        @Override
        public void signalMsix(int vector) {
        }

        @Override
        public boolean isMsixVectorUsable(int vector) {
            return false;
        }

        @Override
        public void setIntx(boolean asserted) {
        }
    };
}
