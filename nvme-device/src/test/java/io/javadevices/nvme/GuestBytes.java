package io.javadevices.nvme;

import io.javadevices.pci.GuestMemoryException;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;

/** Test helpers: guest memory contents as byte arrays, random patterns, little-endian fields of host buffers. */
final class GuestBytes {
    private GuestBytes() {
    }

    static byte[] pattern(long seed, int length) {
        byte[] b = new byte[length];
        new Random(seed).nextBytes(b);
        return b;
    }

    static void put(Fixture f, long address, byte[] data) {
        try {
            f.host.memory().write(address, data, 0, data.length);
        } catch (GuestMemoryException e) {
            throw new AssertionError(e);
        }
    }

    static byte[] get(Fixture f, long address, int length) {
        byte[] out = new byte[length];
        try {
            f.host.memory().read(address, out, 0, length);
        } catch (GuestMemoryException e) {
            throw new AssertionError(e);
        }
        return out;
    }

    static ByteBuffer le(byte[] data) {
        return ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** True if the status field has DNR (bit 14). */
    static boolean dnr(io.javadevices.nvme.driver.Completion c) {
        return (c.status() & (1 << 14)) != 0;
    }
}
