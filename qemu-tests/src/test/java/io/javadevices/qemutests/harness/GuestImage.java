package io.javadevices.qemutests.harness;

import org.testcontainers.DockerClientFactory;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The local Docker image with QEMU 11.1 and the guest kernel/initramfs, built by
 * {@code qemu-tests/image/build-image.sh} (cached: a second run takes seconds). Built once per JVM.
 *
 * <p>Without a Docker engine the end-to-end tests cannot run: in CI ({@code CI=true}) that is a
 * failure with a clear message; locally the tests are skipped with that message — never a silent pass.
 */
public final class GuestImage {
    private static String tag;

    private GuestImage() {
    }

    /** The image tag, building the image when its inputs changed. */
    public static synchronized String tag() {
        if (tag != null) {
            return tag;
        }
        requireDocker();
        Path script = moduleDir().resolve("image/build-image.sh");
        if (!Files.isRegularFile(script)) {
            fail("missing " + script);
        }
        try {
            Process p = new ProcessBuilder("bash", script.toString())
                    .redirectError(ProcessBuilder.Redirect.INHERIT) // progress lines go to the test log
                    .start();
            String last = null;
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) {
                    System.out.println("[image] " + line);
                    if (!line.isBlank()) {
                        last = line.trim();
                    }
                }
            }
            if (!p.waitFor(40, TimeUnit.MINUTES) || p.exitValue() != 0) {
                fail("guest image build failed (see [image] lines above); exit " + p.exitValue());
            }
            tag = last;
            return tag;
        } catch (IOException e) {
            throw new IllegalStateException("cannot run " + script, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** Fails in CI, skips locally, when no Docker engine answers. */
    public static void requireDocker() {
        matchDockerApiVersion();
        boolean available;
        try {
            available = DockerClientFactory.instance().isDockerAvailable();
        } catch (Throwable t) {
            available = false;
        }
        String message = "No Docker engine is reachable: the QEMU end-to-end tests need one. "
                + "Run qemu-tests/image/setup-host.sh as root (installs docker.io and starts dockerd), or use .ci/run.";
        if (!available) {
            if ("true".equalsIgnoreCase(System.getenv("CI"))) {
                fail(message);
            }
            assumeTrue(false, message);
        }
    }

    /**
     * Testcontainers 2.0 speaks Docker API 1.44 by default, which Debian 12's docker.io (20.10, API 1.41)
     * rejects with "client version 1.44 is too new". docker-java reads the {@code api.version} system
     * property, so pin it to the engine's own version (asked through the docker CLI) unless set already.
     */
    private static void matchDockerApiVersion() {
        if (System.getProperty("api.version") != null) {
            return;
        }
        try {
            Process p = new ProcessBuilder("docker", "version", "--format", "{{.Server.APIVersion}}")
                    .redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            if (p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0 && out.matches("\\d+\\.\\d+")) {
                System.setProperty("api.version", out);
                System.out.println("[harness] Docker engine API version " + out);
            }
        } catch (IOException e) {
            // no docker CLI: requireDocker reports the engine as unreachable
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** The qemu-tests module directory (Maven runs tests with it as the working directory). */
    public static Path moduleDir() {
        Path cwd = Path.of("").toAbsolutePath();
        if (Files.isDirectory(cwd.resolve("image"))) {
            return cwd;
        }
        return cwd.resolve("qemu-tests");
    }
}
