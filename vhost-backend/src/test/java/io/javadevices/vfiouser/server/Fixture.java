package io.javadevices.vfiouser.server;

import io.javadevices.pci.sample.DmaCopyDevice;
import io.javadevices.vfiouser.client.TestClient;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/** Shared helpers: a server around the DmaCopyDevice sample and fd counting. */
final class Fixture {
    private Fixture() {
    }

    static VfioUserServer start(Path dir, Limits limits) throws IOException {
        VfioUserServer server = VfioUserServer.builder()
                .socket(dir.resolve("dev.sock"))
                .device(DmaCopyDevice::new)
                .limits(limits)
                .build();
        server.start();
        return server;
    }

    static VfioUserServer start(Path dir) throws IOException {
        return start(dir, Limits.defaults());
    }

    static TestClient client(VfioUserServer server) throws IOException {
        return TestClient.connect(server.socketPath());
    }

    /** Waits for the current client's cleanup to finish. */
    static void idle(VfioUserServer server) throws InterruptedException {
        server.awaitNoClient(Duration.ofSeconds(10));
    }

    static long openFds() throws IOException {
        try (var s = Files.list(Path.of("/proc/self/fd"))) {
            return s.count();
        }
    }

    /** A fresh client completes a handshake and a config read: the server still serves. */
    static void assertServes(VfioUserServer server) throws Exception {
        idle(server);
        try (TestClient c = client(server)) {
            c.version();
            c.deviceInfo();
            long vendor = c.readLong(7, 0, 2);
            if (vendor != 0x4E58) {
                throw new AssertionError("vendor id " + Long.toHexString(vendor));
            }
        }
        idle(server);
    }
}
