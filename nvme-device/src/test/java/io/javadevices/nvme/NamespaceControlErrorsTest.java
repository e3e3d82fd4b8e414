package io.javadevices.nvme;

import io.javadevices.pci.DeviceControl;
import io.javadevices.pci.DeviceControl.ControlException;
import io.javadevices.pci.DeviceControl.ControlException.Kind;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static io.javadevices.nvme.LinuxRescan.activeList;
import static io.javadevices.nvme.LinuxRescan.changedLog;
import static io.javadevices.nvme.LinuxRescan.noEventBeyond;
import static io.javadevices.nvme.LinuxRescan.nsze;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Every malformed or impossible control call: the right {@link ControlException.Kind} (the host maps it to a JSON-RPC
 * error code), one sentence that names the method and the parameter, and no change at all: the same namespaces,
 * sizes and Identify data, nothing in the Changed Namespace List, no notice to the guest.
 */
class NamespaceControlErrorsTest {
    @TempDir
    Path dir;

    private static Map<String, Object> params(Object... keyValues) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < keyValues.length; i += 2) {
            m.put((String) keyValues[i], keyValues[i + 1]);
        }
        return m;
    }

    /** The call fails with {@code kind} and a message containing {@code words}; returns the message. */
    private static String refused(Fixture f, Kind kind, String words, String method, Object... keyValues) {
        ControlException e = assertThrows(ControlException.class,
                () -> f.controller.control().call(method, params(keyValues)), method + " " + List.of(keyValues));
        assertEquals(kind, e.kind(), e.getMessage());
        assertTrue(e.getMessage().contains(words), "'" + e.getMessage() + "' should say '" + words + "'");
        return e.getMessage();
    }

    private static Object list(Fixture f) throws ControlException {
        return f.controller.control().call("namespace_list", Map.of());
    }

    @Test
    void everyBadCallIsRefusedAndChangesNothing() throws Exception {
        Path missing = dir.resolve("missing.raw");
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M,null:16M")) {
            f.driver.bringUp(1, 16, false);
            DeviceControl control = f.controller.control();
            assertEquals(Set.of("namespace_list", "namespace_add", "namespace_remove", "namespace_resize"),
                    control.methods());
            Object before = list(f);
            long sizeBefore = nsze(f, 1);

            refused(f, Kind.METHOD_NOT_FOUND, "namespace_frobnicate", "namespace_frobnicate");
            refused(f, Kind.INVALID_PARAMS, "unknown parameter 'controller'", "namespace_list", "controller", "/x");

            // namespace_add
            refused(f, Kind.INVALID_PARAMS, "'namespace' is missing", "namespace_add");
            refused(f, Kind.INVALID_PARAMS, "'namespace' must be a string", "namespace_add", "namespace", 5L);
            refused(f, Kind.INVALID_PARAMS, "unknown namespace kind 'disk'", "namespace_add", "namespace", "disk:1G");
            refused(f, Kind.INVALID_PARAMS, "bad size '0'", "namespace_add", "namespace", "ram:0");
            refused(f, Kind.INVALID_PARAMS, "bad size '-4096'", "namespace_add", "namespace", "ram:-4096");
            refused(f, Kind.INVALID_PARAMS, "multiple of the LBA size 4096", "namespace_add", "namespace", "ram:6K@4096");
            refused(f, Kind.INVALID_PARAMS, "@512 or @4096", "namespace_add", "namespace", "ram:1M@1024");
            refused(f, Kind.INVALID_PARAMS, "one namespace expected", "namespace_add", "namespace", "ram:1M,ram:1M");
            refused(f, Kind.INVALID_PARAMS, "unknown parameter 'size'", "namespace_add", "namespace", "ram:1M", "size", 1L);
            refused(f, Kind.INVALID_PARAMS, "'nsid' must be an integer", "namespace_add", "namespace", "ram:1M", "nsid", "3");
            refused(f, Kind.INVALID_PARAMS, "'nsid' must be an integer", "namespace_add", "namespace", "ram:1M", "nsid", 3.0);
            refused(f, Kind.INVALID_PARAMS, "must be in 1..32", "namespace_add", "namespace", "ram:1M", "nsid", 0L);
            refused(f, Kind.INVALID_PARAMS, "broadcast NSID", "namespace_add", "namespace", "ram:1M", "nsid", 0xFFFF_FFFFL);
            refused(f, Kind.INVALID_PARAMS, "must be in 1..32", "namespace_add", "namespace", "ram:1M", "nsid", 33L);
            refused(f, Kind.INVALID_PARAMS, "must be in 1..32", "namespace_add", "namespace", "ram:1M", "nsid", -1L);
            refused(f, Kind.REFUSED, "NSID 2 is in use", "namespace_add", "namespace", "ram:1M", "nsid", 2L);
            refused(f, Kind.REFUSED, "cannot be opened", "namespace_add", "namespace", "file:" + missing);
            refused(f, Kind.REFUSED, "RAM + swap", "namespace_add", "namespace", "ram:1000T");

            // namespace_remove
            refused(f, Kind.INVALID_PARAMS, "'nsid' is missing", "namespace_remove");
            refused(f, Kind.INVALID_PARAMS, "'nsid' must be an integer", "namespace_remove", "nsid", "1");
            refused(f, Kind.INVALID_PARAMS, "must be in 1..32", "namespace_remove", "nsid", 0L);
            refused(f, Kind.INVALID_PARAMS, "broadcast NSID", "namespace_remove", "nsid", 0xFFFF_FFFFL);
            refused(f, Kind.INVALID_PARAMS, "no namespace 3", "namespace_remove", "nsid", 3L);

            // namespace_resize
            refused(f, Kind.INVALID_PARAMS, "'nsid' is missing", "namespace_resize", "size", "16M");
            refused(f, Kind.INVALID_PARAMS, "'size' is missing", "namespace_resize", "nsid", 1L);
            refused(f, Kind.INVALID_PARAMS, "above 0", "namespace_resize", "nsid", 1L, "size", 0L);
            refused(f, Kind.INVALID_PARAMS, "above 0", "namespace_resize", "nsid", 1L, "size", -4096L);
            refused(f, Kind.INVALID_PARAMS, "not a size", "namespace_resize", "nsid", 1L, "size", "-4096");
            refused(f, Kind.INVALID_PARAMS, "not a size", "namespace_resize", "nsid", 1L, "size", "lots");
            refused(f, Kind.INVALID_PARAMS, "must be bytes or a size string", "namespace_resize", "nsid", 1L, "size", 1.5);
            refused(f, Kind.INVALID_PARAMS, "multiple of namespace 1's 512-byte blocks", "namespace_resize", "nsid", 1L,
                    "size", 1000L);
            refused(f, Kind.INVALID_PARAMS, "'shrink' must be true or false", "namespace_resize", "nsid", 1L, "size",
                    "4M", "shrink", "yes");
            refused(f, Kind.INVALID_PARAMS, "no namespace 4", "namespace_resize", "nsid", 4L, "size", "16M");
            refused(f, Kind.INVALID_PARAMS, "broadcast NSID", "namespace_resize", "nsid", 0xFFFF_FFFFL, "size", "16M");
            refused(f, Kind.REFUSED, "RAM + swap", "namespace_resize", "nsid", 1L, "size", "1000T");

            assertEquals(before, list(f), "nothing changed");
            assertEquals(sizeBefore, nsze(f, 1));
            assertEquals(List.of(1, 2), activeList(f));
            assertEquals(List.of(), changedLog(f), "no change was recorded");
            noEventBeyond(f, 0);
        }
    }

    @Test
    void removingTwiceIsRefusedTheSecondTime() throws Exception {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M,ram:8M")) {
            f.driver.bringUp(1, 16, false);
            assertEquals(Map.of("nsid", 2L, "flushed", true), f.controller.control().call("namespace_remove",
                    params("nsid", 2L)));
            Object after = list(f);
            refused(f, Kind.INVALID_PARAMS, "no namespace 2", "namespace_remove", "nsid", 2L);
            assertEquals(after, list(f));
        }
    }

    @Test
    void allNsidsInUseIsRefused() throws Exception {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:1M", "max-namespaces", "2")) {
            f.controller.control().call("namespace_add", params("namespace", "ram:1M"));
            refused(f, Kind.REFUSED, "all 2 NSIDs are in use", "namespace_add", "namespace", "ram:1M");
        }
    }

    @Test
    void aPoolsNamespacesBelongToTheGuest() throws Exception {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M", "pool", "ram:64M")) {
            Object before = list(f);
            refused(f, Kind.REFUSED, "managed by the guest", "namespace_add", "namespace", "ram:1M");
            refused(f, Kind.REFUSED, "managed by the guest", "namespace_remove", "nsid", 1L);
            refused(f, Kind.REFUSED, "managed by the guest", "namespace_resize", "nsid", 1L, "size", "16M");
            assertEquals(before, list(f));
            @SuppressWarnings("unchecked")
            List<Map<String, Object>> namespaces = (List<Map<String, Object>>) ((Map<String, Object>) before).get("namespaces");
            assertEquals(1, namespaces.size(), "namespace_list still answers");
        }
    }

    @Test
    void aBackendWithAFixedSizeIsNotResized() throws Exception {
        // A test backend without resize support stands for every fixed-size one (NBD: see NbdControlTest).
        try (Fixture f = new Fixture(new HashMap<>(Map.of("queues", "1", "namespaces", "ram:8M")), 64L << 20,
                spec -> new GatedBackend(spec.open()))) {
            Object before = list(f);
            refused(f, Kind.REFUSED, "cannot be resized", "namespace_resize", "nsid", 1L, "size", "16M");
            assertEquals(before, list(f));
        }
    }

    @Test
    void maxNamespacesDefaultsTo32SoThereIsRoomToAdd() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M")) {
            f.driver.bringUp(1, 16, false);
            assertEquals(32, java.nio.ByteBuffer.wrap(f.driver.identify(0x01, 0))
                    .order(java.nio.ByteOrder.LITTLE_ENDIAN).getInt(516), "Identify Controller NN");
        }
    }
}
