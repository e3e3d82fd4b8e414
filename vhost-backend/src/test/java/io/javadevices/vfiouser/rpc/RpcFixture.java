package io.javadevices.vfiouser.rpc;

import io.javadevices.pci.PciDevicePlugin;
import io.javadevices.vfiouser.host.ControllerDefaults;
import io.javadevices.vfiouser.host.ControllerHost;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** A control plane over a host with the installed plugins (nvme, dma-copy) plus {@link RecordingPlugin}. */
final class RpcFixture implements AutoCloseable {
    final ControllerHost host;
    final RpcServer server;
    final Path dir;
    volatile int shutdownRequests;

    RpcFixture(Path dir, int[] allowUids) throws IOException {
        this.dir = dir;
        List<PciDevicePlugin> plugins = new ArrayList<>(PciDevicePlugin.available(RpcFixture.class.getClassLoader()));
        plugins.add(new RecordingPlugin());
        host = new ControllerHost(plugins, ControllerDefaults.standard(), null);
        host.onShutdownRequest(() -> shutdownRequests++);
        server = RpcServer.start(dir.resolve("control.rpc"), allowUids, new RpcMethods(host));
    }

    RpcFixture(Path dir) throws IOException {
        this(dir, null);
    }

    RpcClient client() throws IOException {
        return RpcClient.connect(server.path());
    }

    /** One call on a fresh connection: the response object. */
    Map<?, ?> call(String method, Map<String, Object> params) throws IOException {
        try (RpcClient c = client()) {
            return c.call(method, params);
        }
    }

    /** The result of a call that must succeed. */
    Map<?, ?> ok(String method, Map<String, Object> params) throws IOException {
        Map<?, ?> response = call(method, params);
        if (!(response.get("result") instanceof Map<?, ?> result)) {
            throw new AssertionError(method + " failed: " + response);
        }
        return result;
    }

    /** The error code of a call that must fail (and its message must name {@code mentions}). */
    long error(String method, Map<String, Object> params, String mentions) throws IOException {
        Map<?, ?> response = call(method, params);
        if (!(response.get("error") instanceof Map<?, ?> error)) {
            throw new AssertionError(method + " " + params + " succeeded: " + response);
        }
        String message = (String) error.get("message");
        if (!message.contains(mentions)) {
            throw new AssertionError("message '" + message + "' does not mention '" + mentions + "'");
        }
        return (Long) error.get("code");
    }

    String sock(String name) {
        return dir.resolve(name).toString();
    }

    @Override
    public void close() {
        server.close();
        host.close();
    }
}
