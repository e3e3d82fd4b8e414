package io.javadevices.nvme.model;

import java.nio.charset.StandardCharsets;
import java.util.UUID;

/**
 * Stable identifiers derived from the serial number and NSID: EUI64, NGUID and UUID (Identify
 * Namespace and the CNS 03h descriptor list report the same values), subsystem NQN, firmware revision.
 */
public final class AdminIds {
    public static final String FIRMWARE_REVISION = "1.0";
    public static final int CONTROLLER_ID = 1;

    private AdminIds() {
    }

    public static String subsystemNqn(String serial) {
        return "nqn.2026-01.io.javadevices:nvme:" + serial;
    }

    private static long hash(String serial) {
        long h = 0xcbf29ce484222325L;
        for (byte b : serial.getBytes(StandardCharsets.US_ASCII)) {
            h = (h ^ (b & 0xFF)) * 0x100000001b3L;
        }
        return h;
    }

    /** EUI64 big-endian: OUI 4A4400h, 24 bits of serial hash, 16 bits of NSID. */
    public static byte[] eui64(String serial, int nsid) {
        long v = 0x4A4400L << 40 | (hash(serial) & 0xFFFFFFL) << 16 | (nsid & 0xFFFFL);
        return bytes(v, 8);
    }

    public static byte[] nguid(String serial, int nsid) {
        byte[] out = new byte[16];
        System.arraycopy(bytes(hash(serial), 8), 0, out, 0, 8);
        System.arraycopy(eui64(serial, nsid), 0, out, 8, 8);
        return out;
    }

    public static byte[] uuid(String serial, int nsid) {
        UUID u = UUID.nameUUIDFromBytes((serial + "/" + nsid).getBytes(StandardCharsets.US_ASCII));
        byte[] out = new byte[16];
        System.arraycopy(bytes(u.getMostSignificantBits(), 8), 0, out, 0, 8);
        System.arraycopy(bytes(u.getLeastSignificantBits(), 8), 0, out, 8, 8);
        return out;
    }

    private static byte[] bytes(long v, int n) {
        byte[] out = new byte[n];
        for (int i = 0; i < n; i++) {
            out[i] = (byte) (v >>> (8 * (n - 1 - i)));
        }
        return out;
    }
}
