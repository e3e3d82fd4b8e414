package io.javadevices.qemutests;

import io.javadevices.qemutests.harness.GuestScripts;
import io.javadevices.qemutests.harness.QemuGuest;
import io.javadevices.qemutests.harness.RpcClient;
import io.javadevices.qemutests.harness.ServerProcess;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Live namespace changes over the control plane while the guest runs: the guest runs fio verify on namespace 1
 * in the background (written and verified as it goes, {@code verify_backlog}) for the whole test while, over JSON-RPC, a namespace is added (the guest's driver sees the
 * Namespace Attribute Changed notice, rescans and the disk appears, without {@code nvme ns-rescan}), written and
 * read back, grown (the guest sees the new size in {@code /sys/block/.../size} by itself, keeps the data and can
 * use the new blocks), and removed (the disk goes). Before any of that, bad calls (unknown controller, bad
 * namespace grammar, an NSID in use, a missing namespace, a bad size, an ill-typed parameter, an unknown method,
 * malformed JSON) get the wire API's error codes and change nothing. Namespace 1's fio verify passes, and the
 * controller counts its writes before the first change and after the last.
 */
class RpcNamespaceIT {
    static final long NS2_BYTES = 32L << 20, NS2_GROWN_BYTES = 48L << 20;
    /** How long the guest writes and verifies namespace 1: longer than the namespace changes take under TCG. */
    static final int NS1_SECONDS = 60;
    private static final String UPTIME = "cut -d' ' -f1 /proc/uptime";

    @TempDir
    Path dir;

    @Test
    void namespaceAddedResizedAndRemovedWhileTheGuestVerifiesAnother() throws Exception {
        Path rpcSocket = dir.resolve("rpc.sock");
        Path vm = dir.resolve("vm.sock");
        String script = guestScript();
        try (ServerProcess server = ServerProcess.startWithRpc("rpc-ns", rpcSocket);
             RpcClient rpc = RpcClient.connect(rpcSocket)) {
            rpc.controllerAdd(vm, "ram:64M");
            try (QemuGuest guest = new QemuGuest.Spec("rpc-ns", dir).cpus(1).memoryMiB(512).vfioUser(vm.getFileName().toString())
                    .script(script).start()) {
                String why = "\nserver output:\n" + server.logTail();
                awaitMark(guest, "ns1-verifying", Duration.ofMinutes(4), server);
                // fio takes seconds to start under TCG: change nothing before its writes reach namespace 1.
                awaitWrites(rpc, vm, 100, "fio is writing namespace 1 before the changes" + why, guest);
                long noticesBefore = rpc.statsGet(vm).device("events.notice");

                badCallsChangeNothing(rpc, vm);

                Map<String, Object> added = rpc.namespaceAdd(vm, "ram:32M");
                assertEquals(2L, added.get("nsid"), "the lowest free NSID: " + added);
                assertEquals(NS2_BYTES, added.get("size_bytes"), added.toString());
                assertEquals(List.of(1L, 2L), nsids(rpc.namespaceList(vm)));
                awaitMark(guest, "ns2-written", Duration.ofMinutes(4), server);
                assertEquals("yes", guest.result("present.ns2"), "the added namespace appeared by itself" + why);
                assertEquals(Long.toString(NS2_BYTES), guest.result("ns2.bytes"), why);
                assertEquals("0", guest.result("ns2.write.rc"), why);
                assertEquals(guest.result("ns2.sum.written"), guest.result("ns2.sum.read"), "read back what was written" + why);

                Map<String, Object> resized = rpc.namespaceResize(vm, 2, "48M");
                assertEquals(2L, resized.get("nsid"), resized.toString());
                assertEquals(NS2_GROWN_BYTES, resized.get("size_bytes"), resized.toString());
                assertEquals(NS2_GROWN_BYTES / 512, resized.get("blocks"), resized.toString());
                awaitMark(guest, "ns2-grown", Duration.ofMinutes(4), server);
                assertEquals(Long.toString(NS2_GROWN_BYTES), guest.result("ns2.bytes.grown"),
                        "the guest saw the new size by itself" + why);
                assertEquals(guest.result("ns2.sum.written"), guest.result("ns2.sum.grown"), "growing kept the data" + why);
                assertEquals("0", guest.result("ns2.tail.write.rc"), "the new blocks are writable" + why);
                assertEquals(guest.result("ns2.sum.written"), guest.result("ns2.sum.tail"), "and read back" + why);

                Map<String, Object> removed = rpc.namespaceRemove(vm, 2);
                assertEquals(2L, removed.get("nsid"), removed.toString());
                assertNotEquals(false, removed.get("flushed"), "the removed namespace's backend flushed: " + removed);
                assertEquals(List.of(1L), nsids(rpc.namespaceList(vm)));
                awaitWrites(rpc, vm, 100, "fio is still writing namespace 1 after the changes" + why, guest);

                QemuGuest.Outcome out = guest.awaitExit(Duration.ofMinutes(4));
                why = "\n" + out.tail() + "\nserver output:\n" + server.logTail();
                assertTrue(out.finished(), "guest did not finish" + why);
                assertEquals("yes", out.get("ns2.gone"), "the removed namespace's disk went by itself" + why);
                assertEquals(1, out.getLong("disks"), "only namespace 1's disk is left" + why);
                assertEquals(0, out.getLong("fio.ns1.rc"), "fio verify on namespace 1" + why);
                assertEquals(0, out.getLong("fio.ns1.err"), "fio verify on namespace 1" + why);
                assertTrue(out.getLong("fio.ns1.readkb") > 0, "fio read back (verified) what it wrote" + why);
                assertTrue(Double.parseDouble(out.get("up.ns1.done")) > Double.parseDouble(out.get("up.ns2.gone")),
                        "namespace 1's I/O was still running when namespace 2 went (else raise NS1_SECONDS)" + why);
                // add, resize and remove: each a Namespace Attribute Changed notice (the driver re-arms its AER).
                assertTrue(rpc.statsGet(vm).device("events.notice") - noticesBefore >= 3,
                        "three Namespace Attribute Changed notices: " + rpc.statsGet(vm).raw() + why);
            }
        }
    }

    /**
     * The guest's side: namespace 1 written and verified in the background; then, each by itself (no rescan), namespace 2
     * appears (written and read), grows (data kept, new blocks used) and goes; marks tell the test when to go on.
     */
    static String guestScript() {
        String dev2 = "${ns2##*/}";
        String size2 = "cat /sys/block/" + dev2 + "/size";
        return GuestScripts.header() + GuestScripts.waitFor("/dev/nvme0n1", 60)
                // Namespace 1 is written and verified (every 64 writes) in the background for NS1_SECONDS, a time
                // that outlasts the namespace changes below (the test checks that its writes reach the controller
                // before the first change and after the last, and that it ended after namespace 2 was gone).
                + "(\n" + GuestScripts.fio("ns1", "--filename=/dev/nvme0n1 --ioengine=libaio --direct=1 --iodepth=8"
                + " --size=16M --rw=randwrite --bsrange=4k-64k --verify=crc32c --verify_backlog=64 --verify_fatal=1"
                + " --time_based --runtime=" + NS1_SECONDS)
                + GuestScripts.report("up.ns1.done", UPTIME) + ") &\nns1_fio=$!\n"
                + "echo \"@@MARK ns1-verifying\"\n"
                // namespace_add: the disk appears by itself.
                + GuestScripts.waitForNamespace(2, 180)
                + GuestScripts.report("up.ns2.present", UPTIME)
                + GuestScripts.report("ns2.bytes", "echo $(( $(" + size2 + ") * 512 ))")
                + "dd if=/dev/urandom of=/tmp/pattern bs=1M count=4 2>/dev/null\n"
                + GuestScripts.run("ns2.write", "dd if=/tmp/pattern of=$ns2 bs=1M oflag=direct conv=fsync")
                + GuestScripts.report("ns2.sum.written", "sha256sum /tmp/pattern | cut -c1-64")
                + GuestScripts.report("ns2.sum.read", "dd if=$ns2 bs=1M count=4 iflag=direct 2>/dev/null | sha256sum | cut -c1-64")
                + "echo \"@@MARK ns2-written\"\n"
                // namespace_resize: the new size shows up by itself; the data stays; the new blocks work.
                + "i=0; while [ \"$(" + size2 + ")\" != " + NS2_GROWN_BYTES / 512 + " ] && [ $i -lt 900 ]; do sleep 0.2; i=$((i+1)); done\n"
                + GuestScripts.report("ns2.bytes.grown", "echo $(( $(" + size2 + ") * 512 ))")
                + GuestScripts.report("ns2.sum.grown", "dd if=$ns2 bs=1M count=4 iflag=direct 2>/dev/null | sha256sum | cut -c1-64")
                + GuestScripts.run("ns2.tail.write", "dd if=/tmp/pattern of=$ns2 bs=1M seek=" + (NS2_BYTES >> 20)
                + " oflag=direct conv=fsync")
                + GuestScripts.report("ns2.sum.tail", "dd if=$ns2 bs=1M skip=" + (NS2_BYTES >> 20)
                + " count=4 iflag=direct 2>/dev/null | sha256sum | cut -c1-64")
                + "echo \"@@MARK ns2-grown\"\n"
                // namespace_remove: the disk goes by itself.
                + "i=0; while [ -b $ns2 ] && [ $i -lt 900 ]; do sleep 0.2; i=$((i+1)); done\n"
                + GuestScripts.report("ns2.gone", "if [ -b $ns2 ]; then echo no; else echo yes; fi")
                + GuestScripts.report("up.ns2.gone", UPTIME)
                + GuestScripts.report("disks", "ls -d /sys/block/nvme* | wc -l")
                + "wait $ns1_fio\n";
    }

    /** Every bad call gets its error code, the connection stays usable, and the namespaces stay as they were. */
    private static void badCallsChangeNothing(RpcClient rpc, Path vm) throws Exception {
        List<Map<String, Object>> before = rpc.namespaceList(vm);
        String ctrl = vm.toString();
        Path nowhere = vm.resolveSibling("no-such-controller.sock");
        expectError(rpc, -32602, "namespace_add", Map.of("controller", nowhere.toString(), "namespace", "ram:16M"));
        expectError(rpc, -32602, "namespace_add", Map.of("controller", ctrl, "namespace", "ram:lots"));
        expectError(rpc, -32602, "namespace_add", Map.of("controller", ctrl, "namespace", "tape:16M"));
        expectError(rpc, -32602, "namespace_add", Map.of("controller", ctrl));
        expectError(rpc, -32000, "namespace_add", Map.of("controller", ctrl, "namespace", "ram:16M", "nsid", 1L));
        expectError(rpc, Set.of(-32602L, -32000L), "namespace_resize", Map.of("controller", ctrl, "nsid", 7L, "size", "48M"));
        expectError(rpc, -32602, "namespace_resize", Map.of("controller", ctrl, "nsid", 1L, "size", "12Q"));
        expectError(rpc, -32602, "namespace_remove", Map.of("controller", ctrl, "nsid", "one"));
        expectError(rpc, Set.of(-32602L, -32000L), "namespace_remove", Map.of("controller", ctrl, "nsid", 7L));
        expectError(rpc, -32601, "namespace_format_everything", Map.of("controller", ctrl));
        assertEquals(-32700L, errorCode(rpc.send("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"namespace_add\",")),
                "malformed JSON");
        assertEquals(-32600L, errorCode(rpc.send("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"namespace_list\",\"params\":[1]}")),
                "params that are not an object");
        assertEquals(-32600L, errorCode(rpc.send("[{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"controller_list\"}]")), "a batch");
        assertEquals(before, rpc.namespaceList(vm), "the bad calls changed nothing");
        assertEquals(1, rpc.controllerList().size(), "no controller appeared");
    }

    private static void expectError(RpcClient rpc, long code, String method, Map<String, Object> params) throws Exception {
        expectError(rpc, Set.of(code), method, params);
    }

    private static void expectError(RpcClient rpc, Set<Long> codes, String method, Map<String, Object> params)
            throws Exception {
        try {
            Object result = rpc.call(method, params);
            fail(method + " " + params + " succeeded: " + result);
        } catch (RpcClient.RpcError e) {
            assertTrue(codes.contains(e.code()), method + " " + params + " answered " + e.getMessage() + ", wanted " + codes);
            assertFalse(e.getMessage().isBlank(), "an error message");
            System.out.println("[rpc-ns] " + method + " " + params + " -> " + e.getMessage());
        }
    }

    /** Waits until the controller counted {@code more} writes beyond now (namespace 1's fio is the only writer). */
    private static void awaitWrites(RpcClient rpc, Path vm, long more, String what, QemuGuest guest) throws Exception {
        long target = rpc.statsGet(vm).device("io.writes") + more;
        long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
        while (rpc.statsGet(vm).device("io.writes") < target && System.nanoTime() < deadline && guest.isRunning()) {
            Thread.sleep(100);
        }
        assertTrue(rpc.statsGet(vm).device("io.writes") >= target, what + "\n" + guest.consoleTail(20));
    }

    private static long errorCode(Map<String, Object> response) {
        assertFalse(response.containsKey("result"), "no result: " + response);
        Object error = response.get("error");
        assertInstanceOf(Map.class, error, "an error object: " + response);
        return ((Number) ((Map<?, ?>) error).get("code")).longValue();
    }

    private static List<Long> nsids(List<Map<String, Object>> namespaces) {
        return namespaces.stream().map(n -> (Long) n.get("nsid")).toList();
    }

    private static void awaitMark(QemuGuest guest, String mark, Duration timeout, ServerProcess server)
            throws InterruptedException {
        if (!guest.awaitOutput("@@MARK " + mark, timeout)) {
            fail("guest never printed @@MARK " + mark + "; console tail:\n" + guest.consoleTail(40)
                    + "\nserver output:\n" + server.logTail());
        }
    }
}
