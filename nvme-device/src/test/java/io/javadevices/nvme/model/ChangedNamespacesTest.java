package io.javadevices.nvme.model;

import org.junit.jupiter.api.Test;

import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.*;

class ChangedNamespacesTest {
    @Test
    void ascendingUnsignedWithoutDuplicates() {
        ChangedNamespaces list = new ChangedNamespaces();
        assertTrue(list.isEmpty());
        list.add(7);
        list.add(2);
        list.add(7);
        list.add(0xFFFF_FFFE); // the highest valid NSID sorts last, not first
        assertArrayEquals(new int[] {2, 7, 0xFFFF_FFFE}, list.snapshot().nsids());
        assertEquals(3, list.size());
    }

    @Test
    void moreThan1024IsTheOverflowEntry() {
        ChangedNamespaces list = new ChangedNamespaces();
        IntStream.rangeClosed(1, 1024).forEach(list::add);
        assertEquals(1024, list.snapshot().nsids().length);
        list.add(1025);
        assertArrayEquals(new int[] {ChangedNamespaces.OVERFLOW}, list.snapshot().nsids());
        list.clear(list.snapshot().upTo());
        assertTrue(list.isEmpty());
    }

    @Test
    void clearingKeepsChangesMadeAfterTheRead() {
        ChangedNamespaces list = new ChangedNamespaces();
        list.add(1);
        list.add(2);
        ChangedNamespaces.Snapshot read = list.snapshot();
        list.add(2); // changed again while the page was on its way to the host
        list.add(3);
        list.clear(read.upTo());
        assertArrayEquals(new int[] {2, 3}, list.snapshot().nsids());
    }
}
