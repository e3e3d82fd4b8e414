package io.javadevices.nvme.model;

import io.javadevices.nvme.backend.RamBackend;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class NamespaceTableTest {
    private static Namespace ram(int nsid) {
        return new Namespace(nsid, new RamBackend(1 << 20), 512);
    }

    @Test
    void attachedNamespacesAreActiveAndDetachedOnesAreNot() {
        NamespaceTable t = new NamespaceTable(8);
        List<Integer> changes = new ArrayList<>();
        t.addListener(changes::add);
        Namespace a = ram(1), b = ram(5);
        t.add(a, true);
        t.add(b, false);
        assertSame(a, t.attached(1));
        assertNull(t.attached(5), "allocated but not attached");
        assertSame(b, t.allocated(5));
        assertEquals(List.of(a), t.attachedList());
        assertEquals(List.of(1), changes, "only attached changes are notices");

        assertTrue(t.setAttached(5, true));
        assertFalse(t.setAttached(5, true), "already attached");
        assertEquals(List.of(a, b), t.attachedList());
        assertTrue(t.setAttached(1, false));
        assertEquals(List.of(b), t.attachedList());
        assertEquals(List.of(1, 5, 1), changes);

        assertSame(b, t.remove(5));
        assertNull(t.attached(5));
        assertNull(t.allocated(5));
        assertNull(t.remove(5));
        assertEquals(List.of(1, 5, 1, 5), changes);
        t.allocatedList().forEach(ns -> ns.backend().close());
        b.backend().close();
    }

    @Test
    void lookupsOutsideTheNsidRangeAreNull() {
        NamespaceTable t = NamespaceTable.of(List.of(ram(1), ram(2)));
        assertEquals(2, t.maxNsid());
        for (int nsid : new int[] {0, -1, 3, Integer.MAX_VALUE, Integer.MIN_VALUE}) {
            assertNull(t.attached(nsid), "NSID " + nsid);
        }
        assertThrows(IllegalArgumentException.class, () -> t.add(ram(2), true), "NSID in use");
        assertThrows(IllegalArgumentException.class, () -> t.add(ram(3), true), "beyond NN");
        t.allocatedList().forEach(ns -> ns.backend().close());
    }

    @Test
    void aReplacedNamespaceIsSeenByNewLookupsOnly() {
        NamespaceTable t = NamespaceTable.of(List.of(ram(1)));
        Namespace old = t.attached(1);
        Namespace formatted = new Namespace(1, old.backend(), 4096);
        t.replace(formatted);
        assertSame(formatted, t.attached(1));
        assertEquals(9, old.lbaShift(), "a command that looked it up before goes on with the old format");
        assertThrows(IllegalArgumentException.class, () -> t.replace(ram(7)));
        old.backend().close();
    }

    @Test
    void inventoryListenersSeeEveryChangeAttachedOrNot() {
        NamespaceTable t = new NamespaceTable(4);
        List<Integer> attachedChanges = new ArrayList<>(), inventory = new ArrayList<>();
        t.addListener(attachedChanges::add);
        t.addInventoryListener(inventory::add);
        Namespace a = ram(2);
        t.add(a, false);                       // allocated, not attached: no Namespace Attribute notice
        t.setAttached(2, true);
        t.replace(new Namespace(2, a.backend(), 4096, a.ids(), a.nmic()));
        t.setAttached(2, false);
        t.replace(new Namespace(2, a.backend(), 512, a.ids(), a.nmic())); // detached: a notice for nobody
        t.remove(2);
        assertEquals(List.of(2, 2, 2), attachedChanges, "attach, format while attached, detach");
        assertEquals(List.of(2, 2, 2, 2, 2, 2), inventory, "every change, for the manifest");
        a.backend().close();
    }
}
