package io.javadevices.qemutests.harness;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** SHA-256 of a file region on the host, as lowercase hex (what the guest's {@code sha256sum} prints). */
public final class Checksums {
    private Checksums() {
    }

    /** SHA-256 of the first {@code bytes} bytes of {@code file}; fails if the file is shorter. */
    public static String sha256(Path file, long bytes) throws IOException {
        return sha256(file, 0, bytes);
    }

    /** SHA-256 of {@code bytes} bytes of {@code file} from {@code offset}; fails if the file is shorter. */
    public static String sha256(Path file, long offset, long bytes) throws IOException {
        MessageDigest sha;
        try {
            sha = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        ByteBuffer buffer = ByteBuffer.allocate(1 << 20);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long position = offset;
            long left = bytes;
            while (left > 0) {
                buffer.clear().limit((int) Math.min(buffer.capacity(), left));
                int n = ch.read(buffer, position);
                if (n < 0) {
                    throw new AssertionError(file + " is shorter than " + (offset + bytes) + " bytes");
                }
                sha.update(buffer.array(), 0, n);
                position += n;
                left -= n;
            }
        }
        return HexFormat.of().formatHex(sha.digest());
    }
}
