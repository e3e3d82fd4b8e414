package io.javadevices.nvme.pool;

import io.javadevices.nvme.model.NamespaceIds;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.zip.CRC32;

/**
 * The namespace table of a directory pool, as the file {@code pool.manifest} in the pool directory.
 *
 * <p>Format: UTF-8 text, one record a line, fields separated by one space:
 * <pre>
 * javadevices-nvme-pool 1
 * ns NSID BYTES LBASIZE ATTACHED NMIC OWNED NGUID:EUI64:UUID PATH
 * ...
 * crc32 XXXXXXXX
 * </pre>
 * {@code NSID} decimal 1..NN; {@code BYTES} the namespace's capacity (its backing file's size); {@code LBASIZE}
 * 512 or 4096 (the current format: a Format NVM changes it); {@code ATTACHED} 1 or 0 (attached to this
 * controller); {@code NMIC} as created; {@code OWNED} 1 if the pool created the file (deleting the namespace
 * deletes it) or 0 for a file named on the command line (never deleted); the identifiers in hex
 * ({@link NamespaceIds#toHex}); {@code PATH} the rest of the line: relative to the pool directory for files
 * inside it, else absolute (an owned file is always a plain name in the directory). The last line is the CRC-32 (hex) of every byte before it.
 *
 * <p>Crash safety: a new manifest is written to {@code pool.manifest.tmp}, fsynced, renamed over the old one,
 * and the directory is fsynced ({@code rename(2)} is atomic), so after a crash the file is the old or the new
 * manifest, never a torn one. Anything else (a bad line, a wrong checksum, a duplicate NSID) is refused with
 * {@link IllegalArgumentException}: a controller must not start with namespaces silently missing.
 */
public final class PoolManifest {
    public static final String FILE = "pool.manifest";
    private static final String HEADER = "javadevices-nvme-pool 1";

    /** One namespace as recorded. */
    public record Entry(int nsid, long bytes, int lbaSize, boolean attached, int nmic, boolean owned,
                        NamespaceIds ids, String path) {
    }

    private final Path directory;
    private final Path file;
    private final Path temporary;

    public PoolManifest(Path directory) {
        this.directory = directory;
        this.file = directory.resolve(FILE);
        this.temporary = directory.resolve(FILE + ".tmp");
    }

    public Path file() {
        return file;
    }

    public boolean exists() {
        return Files.exists(file);
    }

    /** The recorded namespaces; {@link IllegalArgumentException} naming the file if it is unreadable or corrupt. */
    public List<Entry> read() {
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw refused("cannot be read: " + e);
        }
        int end = text.length() < 2 ? -1 : text.lastIndexOf('\n', text.length() - 2) + 1; // the last line
        if (!text.startsWith(HEADER + "\n") || end <= HEADER.length() || !text.endsWith("\n")
                || !text.startsWith("crc32 ", end)) {
            throw refused("is not a complete pool manifest (header or checksum line missing)");
        }
        CRC32 crc = new CRC32();
        crc.update(text.substring(0, end).getBytes(StandardCharsets.UTF_8));
        String recorded = text.substring(end + 6, text.length() - 1);
        if (!recorded.equals(String.format(Locale.ROOT, "%08x", crc.getValue()))) {
            throw refused("has a wrong checksum (the file was changed or damaged)");
        }
        List<Entry> entries = new ArrayList<>();
        Set<Integer> nsids = new HashSet<>();
        String[] lines = text.substring(HEADER.length() + 1, end).split("\n", -1);
        for (int i = 0; i < lines.length - 1; i++) { // the split leaves an empty last piece
            Entry e = parse(lines[i]);
            if (!nsids.add(e.nsid())) {
                throw refused("names NSID " + e.nsid() + " twice");
            }
            entries.add(e);
        }
        return entries;
    }

    private Entry parse(String line) {
        String[] f = line.split(" ", 9);
        try {
            if (f.length != 9 || !f[0].equals("ns") || f[8].isEmpty()) {
                throw new IllegalArgumentException("expected 9 fields");
            }
            int lba = Integer.parseInt(f[3]);
            if (lba != 512 && lba != 4096) {
                throw new IllegalArgumentException("LBA size " + lba);
            }
            Entry e = new Entry(Integer.parseInt(f[1]), Long.parseLong(f[2]), lba, flag(f[4]), Integer.parseInt(f[5]),
                    flag(f[6]), NamespaceIds.fromHex(f[7]), f[8]);
            if (e.nsid() < 1 || e.bytes() < lba || e.bytes() % lba != 0 || (e.nmic() & ~1) != 0) {
                throw new IllegalArgumentException("NSID, size or NMIC out of range");
            }
            if (e.owned() && (e.path().contains("/") || e.path().startsWith("."))) {
                // The pool deletes the files it owns: only plain names inside its directory can be its own.
                throw new IllegalArgumentException("a pool-owned file must be a plain name in the pool directory");
            }
            return e;
        } catch (IllegalArgumentException e) { // NumberFormatException too
            throw refused("has a malformed line '" + line + "': " + e.getMessage());
        }
    }

    private static boolean flag(String s) {
        return switch (s) {
            case "1" -> true;
            case "0" -> false;
            default -> throw new IllegalArgumentException("flag " + s);
        };
    }

    private IllegalArgumentException refused(String why) {
        return new IllegalArgumentException("pool manifest " + file + " " + why + "; refusing to start rather than"
                + " lose its namespaces: restore the file, or move the pool directory aside to start an empty pool");
    }

    /** Replaces the manifest by one holding {@code entries}: write new, fsync, rename, fsync the directory. */
    public void write(List<Entry> entries) throws IOException {
        StringBuilder b = new StringBuilder(HEADER).append('\n');
        for (Entry e : entries) {
            if (e.path().indexOf('\n') >= 0) {
                throw new IOException("path with a line break: " + e.path());
            }
            b.append("ns ").append(e.nsid()).append(' ').append(e.bytes()).append(' ').append(e.lbaSize())
                    .append(' ').append(e.attached() ? 1 : 0).append(' ').append(e.nmic())
                    .append(' ').append(e.owned() ? 1 : 0).append(' ').append(e.ids().toHex())
                    .append(' ').append(e.path()).append('\n');
        }
        CRC32 crc = new CRC32();
        crc.update(b.toString().getBytes(StandardCharsets.UTF_8));
        b.append(String.format(Locale.ROOT, "crc32 %08x\n", crc.getValue()));
        byte[] bytes = b.toString().getBytes(StandardCharsets.UTF_8);
        try (FileChannel c = FileChannel.open(temporary, StandardOpenOption.WRITE, StandardOpenOption.CREATE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer buf = ByteBuffer.wrap(bytes);
            while (buf.hasRemaining()) {
                c.write(buf);
            }
            c.force(true);
        }
        Files.move(temporary, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        syncDirectory();
    }

    /** fsync of the directory makes the rename durable (Linux: open the directory read-only and fsync it). */
    private void syncDirectory() throws IOException {
        try (FileChannel d = FileChannel.open(directory, StandardOpenOption.READ)) {
            d.force(true);
        }
    }

    /** Removes a temporary file a crash left before its rename (the manifest beside it is the valid one). */
    public void removeStaleTemporary() throws IOException {
        try {
            Files.delete(temporary);
        } catch (NoSuchFileException none) {
            // nothing to remove
        }
    }
}
