package io.javadevices.nvme.model;

import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.UUID;

/**
 * The globally unique identifiers of one namespace (NVMe 1.4 §7.11): NGUID (16 bytes) and EUI-64 (8 bytes)
 * as Identify Namespace reports them (bytes 104-119 and 120-127, big-endian as the spec stores them), and
 * the UUID of the CNS 03h descriptor list. Linux builds the {@code /dev/disk/by-id} links and its
 * duplicate-ID check ({@code nvme_global_check_duplicate_ids}) from them, so two namespaces must never share
 * one, and a namespace keeps its own across a server restart (the pool manifest stores them).
 *
 * <p>Two origins: {@link #derived} (serial number + NSID, what command-line namespaces always had, so an
 * unchanged configuration keeps its links) and {@link #random} (a namespace created by Namespace
 * Management: a random UUID, NGUID and EUI-64 derived from it).
 */
public record NamespaceIds(byte[] nguid, byte[] eui64, byte[] uuid) {
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final HexFormat HEX = HexFormat.of();

    public NamespaceIds {
        if (nguid.length != 16 || eui64.length != 8 || uuid.length != 16) {
            throw new IllegalArgumentException("NGUID 16, EUI-64 8 and UUID 16 bytes expected");
        }
        nguid = nguid.clone();
        eui64 = eui64.clone();
        uuid = uuid.clone();
    }

    @Override
    public byte[] nguid() {
        return nguid.clone();
    }

    @Override
    public byte[] eui64() {
        return eui64.clone();
    }

    @Override
    public byte[] uuid() {
        return uuid.clone();
    }

    /** The identifiers of command-line namespaces: derived from the serial number and NSID ({@link AdminIds}). */
    public static NamespaceIds derived(String serial, int nsid) {
        return new NamespaceIds(AdminIds.nguid(serial, nsid), AdminIds.eui64(serial, nsid), AdminIds.uuid(serial, nsid));
    }

    /**
     * New identifiers for a created namespace: a random (version 4) UUID; EUI-64 = this device's OUI 4A4400h
     * and 40 bits of the UUID; NGUID = 8 more bytes of the UUID, then the EUI-64 (the same layout as
     * {@link AdminIds#nguid}).
     */
    public static NamespaceIds random() {
        byte[] u = new byte[16];
        RANDOM.nextBytes(u);
        u[6] = (byte) ((u[6] & 0x0F) | 0x40); // RFC 4122 version 4
        u[8] = (byte) ((u[8] & 0x3F) | 0x80); // RFC 4122 variant
        byte[] eui = new byte[8];
        eui[0] = 0x4A;
        eui[1] = 0x44;
        eui[2] = 0x00;
        System.arraycopy(u, 11, eui, 3, 5);
        byte[] nguid = new byte[16];
        System.arraycopy(u, 0, nguid, 0, 8);
        System.arraycopy(eui, 0, nguid, 8, 8);
        return new NamespaceIds(nguid, eui, u);
    }

    /** The UUID in its usual text form. */
    public String uuidText() {
        long msb = 0, lsb = 0;
        for (int i = 0; i < 8; i++) {
            msb = msb << 8 | (uuid[i] & 0xFF);
            lsb = lsb << 8 | (uuid[8 + i] & 0xFF);
        }
        return new UUID(msb, lsb).toString();
    }

    /** {@code nguid:eui64:uuid} in hex, for the pool manifest. */
    public String toHex() {
        return HEX.formatHex(nguid) + ":" + HEX.formatHex(eui64) + ":" + HEX.formatHex(uuid);
    }

    /** The inverse of {@link #toHex}; {@link IllegalArgumentException} if malformed. */
    public static NamespaceIds fromHex(String text) {
        String[] parts = text.split(":", -1);
        if (parts.length != 3) {
            throw new IllegalArgumentException("identifiers must be NGUID:EUI64:UUID in hex: '" + text + "'");
        }
        return new NamespaceIds(HEX.parseHex(parts[0]), HEX.parseHex(parts[1]), HEX.parseHex(parts[2]));
    }
}
