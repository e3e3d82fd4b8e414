package io.javadevices.qemutests.harness;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Writes an uncompressed "newc" cpio archive (the format Linux unpacks into the initramfs). The
 * harness appends one to the guest image's initrd to give the guest its test script: the kernel
 * unpacks concatenated archives in order, so {@code /test.sh} appears next to the image's {@code /init}.
 */
public final class Cpio {
    private final Map<String, byte[]> files = new LinkedHashMap<>();

    /** Adds a regular file (mode 0755) at {@code path} (no leading slash needed). */
    public Cpio add(String path, String content) {
        files.put(path.startsWith("/") ? path.substring(1) : path, content.getBytes(StandardCharsets.UTF_8));
        return this;
    }

    public byte[] toBytes() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int ino = 1000;
        for (Map.Entry<String, byte[]> e : files.entrySet()) {
            entry(out, e.getKey(), 0100755, e.getValue(), ino++);
        }
        entry(out, "TRAILER!!!", 0, new byte[0], 0);
        while (out.size() % 512 != 0) {
            out.write(0);
        }
        return out.toByteArray();
    }

    private static void entry(ByteArrayOutputStream out, String name, int mode, byte[] data, int ino) {
        byte[] nameBytes = (name + "\0").getBytes(StandardCharsets.UTF_8);
        String header = "070701" + hex(ino) + hex(mode) + hex(0) + hex(0) + hex(1) + hex(0) + hex(data.length)
                + hex(0) + hex(0) + hex(0) + hex(0) + hex(nameBytes.length) + hex(0);
        out.writeBytes(header.getBytes(StandardCharsets.US_ASCII));
        out.writeBytes(nameBytes);
        pad(out);
        out.writeBytes(data);
        pad(out);
    }

    private static String hex(int v) {
        return String.format("%08X", v);
    }

    private static void pad(ByteArrayOutputStream out) {
        while (out.size() % 4 != 0) {
            out.write(0);
        }
    }
}
