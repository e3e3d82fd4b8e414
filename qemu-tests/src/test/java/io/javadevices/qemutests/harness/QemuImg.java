package io.javadevices.qemutests.harness;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * {@code qemu-img} on the host (Debian's qemu-utils): makes the images the NBD servers serve and checks,
 * outside any guest, what a guest wrote into them. The image must not be open in a running qemu-nbd (image
 * locking would refuse it, and a writeback cache may hold data that is not in the file yet): stop it first.
 */
public final class QemuImg {
    private QemuImg() {
    }

    /** A finished {@code qemu-img} run: exit code and merged output. */
    public record Result(int exit, String output) {
    }

    /** {@code qemu-img create -f FORMAT IMAGE BYTES}; fails the test if it does not succeed. */
    public static void create(Path image, String format, long bytes) throws IOException, InterruptedException {
        require(run("create", "-q", "-f", format, image.toString(), Long.toString(bytes)), "create " + image);
    }

    /**
     * {@code qemu-img compare -f FMT_A -F FMT_B A B}: exit 0 and "Images are identical." when the guest-visible
     * contents are equal (a size difference is allowed when the larger image's extra part reads as zeroes),
     * 1 and the first differing offset when not, 2 on an error.
     */
    public static Result compare(Path a, String formatA, Path b, String formatB) throws IOException, InterruptedException {
        return run("compare", "-f", formatA, "-F", formatB, a.toString(), b.toString());
    }

    /** {@code qemu-img convert -f SRC_FMT -O DST_FMT SRC DST}; fails the test if it does not succeed. */
    public static void convert(Path source, String sourceFormat, Path target, String targetFormat)
            throws IOException, InterruptedException {
        require(run("convert", "-f", sourceFormat, "-O", targetFormat, source.toString(), target.toString()),
                "convert " + source + " to " + target);
    }

    /** {@code qemu-img check -f FORMAT IMAGE}: exit 0 when the image's metadata is consistent. */
    public static Result check(Path image, String format) throws IOException, InterruptedException {
        return run("check", "-f", format, image.toString());
    }

    private static void require(Result r, String what) {
        if (r.exit() != 0) {
            throw new IllegalStateException("qemu-img " + what + " failed with " + r.exit() + ":\n" + r.output());
        }
    }

    private static Result run(String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of("qemu-img"));
        command.addAll(List.of(args));
        Process p;
        try {
            p = new ProcessBuilder(command).redirectErrorStream(true).start();
        } catch (IOException e) {
            throw new IllegalStateException("cannot run qemu-img (" + e.getMessage()
                    + "): install qemu-utils with qemu-tests/image/setup-host.sh", e);
        }
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException(String.join(" ", command) + " did not finish within 120 s");
        }
        String text = new String(out, StandardCharsets.UTF_8).strip();
        System.out.println("[harness] " + String.join(" ", command) + " -> " + p.exitValue()
                + (text.isEmpty() ? "" : ": " + text));
        return new Result(p.exitValue(), text);
    }
}
