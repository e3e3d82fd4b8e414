package io.javadevices.nvme;

import io.javadevices.nvme.driver.LinuxLikeDriver;
import io.javadevices.pci.testkit.TestHost;

import java.util.HashMap;
import java.util.Map;

/** A test host with one NVMe controller and a Linux-like driver. */
final class Fixture implements AutoCloseable {
    final TestHost host;
    final NvmeController controller;
    final LinuxLikeDriver driver;

    Fixture(Map<String, String> options) {
        this(options, 64L << 20);
    }

    Fixture(Map<String, String> options, long ram) {
        host = TestHost.heap(ram);
        Map<String, String> o = new HashMap<>();
        o.put("namespaces", "ram:64M");
        o.putAll(options);
        controller = host.attach(ctx -> new NvmeController(NvmeOptions.parse(o), ctx));
        driver = new LinuxLikeDriver(host);
    }

    static Fixture of(String... keyValues) {
        Map<String, String> o = new HashMap<>();
        for (int i = 0; i < keyValues.length; i += 2) {
            o.put(keyValues[i], keyValues[i + 1]);
        }
        return new Fixture(o);
    }

    long stat(String key) {
        Long v = controller.statistics().get(key);
        if (v == null) {
            throw new AssertionError("no statistic " + key);
        }
        return v;
    }

    @Override
    public void close() {
        host.close();
    }
}
