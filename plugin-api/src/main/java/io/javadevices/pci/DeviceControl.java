package io.javadevices.pci;

import java.util.Map;
import java.util.Set;

/**
 * Runtime management of a device while a guest uses it: the calls a host's control plane (the vfio-user
 * server's JSON-RPC socket, a Java VMM's own API) forwards to the device, e.g. the NVMe controller's
 * {@code namespace_add}, {@code namespace_remove} and {@code namespace_resize}. The host knows no device:
 * it routes a method it does not answer itself to the device that {@link #methods() lists} it.
 *
 * <p><b>Values.</b> Parameters and results are JSON values as plain Java objects: {@code String},
 * {@code Long} (every JSON integer), {@code Double}, {@code Boolean}, {@code List<Object>},
 * {@code Map<String, Object>} (insertion-ordered) and {@code null}. A method validates its parameters fully
 * before changing anything: a call that throws {@link ControlException} changed nothing.
 *
 * <p><b>Threads.</b> Called from the host's control thread, concurrently with the guest's MMIO and the device's
 * workers, never concurrently with another {@code call} on the same device, {@link PciDevice#reset} or
 * {@link PciDevice#close}. A call may block for as long as the change takes (opening a backend); the guest's
 * I/O keeps running meanwhile.
 */
public interface DeviceControl {

    /** The method names this device answers, e.g. {@code namespace_add}; never the host's own. */
    Set<String> methods();

    /**
     * Runs one method.
     *
     * @param method one of {@link #methods()}
     * @param params the request's named parameters, without the host's own (e.g. the controller's name)
     * @return the result, a JSON value as described above (a {@code Map} for anything structured)
     * @throws ControlException if the method is unknown, a parameter is missing or malformed, or the change is
     *                          refused (the message says which, in words an operator understands)
     */
    Object call(String method, Map<String, Object> params) throws ControlException;

    /** A refused management call; nothing changed. */
    final class ControlException extends Exception {
        /** Why: JSON-RPC 2.0 maps {@link #INVALID_PARAMS} to -32602, {@link #METHOD_NOT_FOUND} to -32601. */
        public enum Kind { METHOD_NOT_FOUND, INVALID_PARAMS, REFUSED }

        private final Kind kind;

        public ControlException(Kind kind, String message) {
            super(message);
            this.kind = java.util.Objects.requireNonNull(kind, "kind");
        }

        public Kind kind() {
            return kind;
        }

        /** A parameter is missing, of the wrong type or out of range. */
        public static ControlException invalidParams(String message) {
            return new ControlException(Kind.INVALID_PARAMS, message);
        }

        /** The parameters are well formed but the device cannot do it now (e.g. the namespace ID is in use). */
        public static ControlException refused(String message) {
            return new ControlException(Kind.REFUSED, message);
        }
    }
}
