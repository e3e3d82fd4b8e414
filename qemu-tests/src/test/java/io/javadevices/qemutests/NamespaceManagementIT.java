package io.javadevices.qemutests;

import io.javadevices.qemutests.harness.GuestScripts;
import io.javadevices.qemutests.harness.JavaNvmeServer;
import io.javadevices.qemutests.harness.QemuGuest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import static io.javadevices.qemutests.harness.GuestScripts.nvmeField;
import static io.javadevices.qemutests.harness.GuestScripts.run;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Namespace management from the guest with the stock driver and nvme-cli 2.13, as a storage engineer's test
 * fixture does it: the controller's capacity pool in Identify, create-ns + attach-ns and the new disk appears
 * by itself (no ns-rescan), fio verify on it, detach-ns and it goes, delete-ns returns the capacity, format
 * to 4096-byte blocks and the block device follows; and, on a directory pool, namespaces, formats and
 * identifiers that survive a server restart.
 */
class NamespaceManagementIT {
    /** The pool: 256 MiB, of which the command-line namespace takes 64 MiB. */
    static final long POOL_BYTES = 256L << 20, NS1_BYTES = 64L << 20;
    /** The created namespace: 96 MiB in 512-byte blocks. */
    static final long NS2_BLOCKS = (96L << 20) / 512;

    @TempDir
    Path dir;

    /**
     * A directory pool of 256 MiB seeded with one 64 MiB file namespace (a seed is used only while the pool
     * has no manifest; after that the manifest is the namespace table).
     */
    Map<String, String> poolOptions(Path pool) {
        return Map.of("namespaces", "file:" + dir.resolve("ns1.img") + ":64M", "pool", "dir:" + pool + ":256M");
    }

    @Test
    void createAttachFioDetachDeleteAndFormatFromTheGuest() throws Exception {
        Path pool = dir.resolve("pool");
        String idCtrl = "nvme id-ctrl /dev/nvme0";
        String script = GuestScripts.waitFor("/dev/nvme0n1", 30)
                + nvmeField("oacs", idCtrl, "oacs") + nvmeField("oaes", idCtrl, "oaes")
                + nvmeField("tnvmcap", idCtrl, "tnvmcap") + nvmeField("unvmcap.start", idCtrl, "unvmcap")
                + nvmeField("mnan", idCtrl, "mnan") + nvmeField("nn", idCtrl, "nn")
                + nvmeField("cntlid", idCtrl, "cntlid")
                + run("listctrl", "nvme list-ctrl /dev/nvme0")
                + GuestScripts.report("listctrl.ids", "nvme list-ctrl /dev/nvme0 | grep -c '^ *\\[ *0\\]:0x1'")
                + run("create", "nvme create-ns /dev/nvme0 --nsze=" + NS2_BLOCKS + " --ncap=" + NS2_BLOCKS + " --flbas=0 --dps=0 --nmic=0")
                + GuestScripts.report("create.nsid", "sed -n 's/.*created nsid: *\\([0-9]*\\).*/\\1/p' /tmp/create.out")
                + nvmeField("unvmcap.created", idCtrl, "unvmcap")
                + GuestScripts.report("allocated", "nvme list-ns /dev/nvme0 --all | grep -c '^\\['")
                + GuestScripts.report("active.before", "nvme list-ns /dev/nvme0 | grep -c '^\\['")
                + run("attach", "nvme attach-ns /dev/nvme0 --namespace-id=2 --controllers=1")
                + GuestScripts.waitFor("/dev/nvme0n2", 30)
                + GuestScripts.report("ns2.bytes", "cat /sys/block/nvme0n2/size | awk '{print $1 * 512}'")
                + GuestScripts.report("ns2.wwid", "cat /sys/block/nvme0n2/wwid")
                + GuestScripts.fio("ns2", "--filename=/dev/nvme0n2 --ioengine=libaio --direct=1 --iodepth=16"
                + " --size=32M --rw=randwrite --bsrange=4k-256k --verify=crc32c --do_verify=1 --verify_fatal=1")
                + run("detach", "nvme detach-ns /dev/nvme0 --namespace-id=2 --controllers=1")
                + GuestScripts.waitGone("/dev/nvme0n2", 30)
                + run("delete", "nvme delete-ns /dev/nvme0 --namespace-id=2")
                + nvmeField("unvmcap.deleted", idCtrl, "unvmcap")
                + GuestScripts.report("allocated.after", "nvme list-ns /dev/nvme0 --all | grep -c '^\\['")
                + GuestScripts.report("ns1.lbs.before", "cat /sys/block/nvme0n1/queue/logical_block_size")
                + run("format", "nvme format /dev/nvme0n1 --lbaf=1 --ses=1 --force")
                + GuestScripts.report("ns1.lbs.after", "cat /sys/block/nvme0n1/queue/logical_block_size")
                + nvmeField("ns1.nsze", "nvme id-ns /dev/nvme0n1", "nsze")
                + GuestScripts.report("ns1.zero", "dd if=/dev/nvme0n1 bs=4096 count=64 iflag=direct 2>/dev/null | tr -d '\\000' | wc -c")
                + GuestScripts.fio("ns1", "--filename=/dev/nvme0n1 --ioengine=libaio --direct=1 --iodepth=8"
                + " --size=16M --rw=randwrite --bs=4k --verify=crc32c --do_verify=1 --verify_fatal=1");
        try (JavaNvmeServer server = JavaNvmeServer.start(dir, poolOptions(pool));
             QemuGuest guest = new QemuGuest.Spec("ns-mgmt", dir).vfioUser(server.socketName()).script(script).start()) {
            QemuGuest.Outcome out = guest.awaitExit(Duration.ofMinutes(6));
            String why = "\n" + out.tail() + "\nserver log:\n" + server.logTail() + "\nstats: " + server.stats();
            assertTrue(out.finished(), "guest did not finish" + why);
            long oacs = Long.decode(out.get("oacs"));
            assertEquals(0b10, oacs & 0b10, "OACS bit 1 Format NVM" + why);
            assertEquals(0b1000, oacs & 0b1000, "OACS bit 3 Namespace Management" + why);
            assertEquals(0x100, Long.decode(out.get("oaes")) & 0x100, "OAES bit 8 Namespace Attribute notices" + why);
            assertEquals(POOL_BYTES, out.getLong("tnvmcap"), why);
            assertEquals(POOL_BYTES - NS1_BYTES, out.getLong("unvmcap.start"), why);
            assertTrue(out.getLong("mnan") >= 2 && out.getLong("nn") >= out.getLong("mnan"), "MNAN ≤ NN" + why);
            assertEquals(0, out.getLong("listctrl.rc"), "nvme list-ctrl (Identify CNS 13h)" + why);
            assertEquals(1, out.getLong("listctrl.ids"), "one controller, CNTLID 1" + why);
            assertEquals(0, out.getLong("create.rc"), why);
            assertEquals(2, out.getLong("create.nsid"), why);
            assertEquals(POOL_BYTES - NS1_BYTES - NS2_BLOCKS * 512, out.getLong("unvmcap.created"), why);
            assertEquals(2, out.getLong("allocated"), "list-ns --all (CNS 10h) lists the new namespace" + why);
            assertEquals(1, out.getLong("active.before"), "not active before attach-ns (CNS 02h)" + why);
            assertEquals(0, out.getLong("attach.rc"), why);
            assertEquals("yes", out.get("present.nvme0n2"), "the attached namespace appeared without a rescan" + why);
            assertEquals(NS2_BLOCKS * 512, out.getLong("ns2.bytes"), why);
            assertFalse(out.get("ns2.wwid").isBlank(), why);
            assertEquals(0, out.getLong("fio.ns2.rc"), why);
            assertEquals(0, out.getLong("fio.ns2.err"), why);
            assertEquals(0, out.getLong("detach.rc"), why);
            assertEquals("yes", out.get("gone.nvme0n2"), "the detached namespace went away by itself" + why);
            assertEquals(0, out.getLong("delete.rc"), why);
            assertEquals(POOL_BYTES - NS1_BYTES, out.getLong("unvmcap.deleted"), "delete-ns returned the capacity" + why);
            assertEquals(1, out.getLong("allocated.after"), why);
            assertEquals(512, out.getLong("ns1.lbs.before"), why);
            assertEquals(0, out.getLong("format.rc"), why);
            assertEquals(4096, out.getLong("ns1.lbs.after"), "the guest's block size followed the format" + why);
            assertEquals(NS1_BYTES / 4096, Long.decode(out.get("ns1.nsze")), why);
            assertEquals(0, out.getLong("ns1.zero"), "user data erase left zeroes" + why);
            assertEquals(0, out.getLong("fio.ns1.rc"), why);
            assertEquals(0, out.getLong("fio.ns1.err"), why);
            // attach, detach and format each changed an attached namespace: each is a Namespace Attribute
            // Changed notice (the driver re-arms its AER after reading log 04h, so every one is delivered).
            assertTrue(server.stats().get("events.notice") >= 3, "Namespace Attribute Changed notices" + why);
        }
        try (var files = Files.list(pool)) {
            assertEquals(List.of(), files.map(p -> p.getFileName().toString()).filter(n -> n.startsWith("ns2")).toList(),
                    "the deleted namespace's file is gone from the pool");
        }
    }

    @Test
    void namespacesFormatsAndIdentifiersSurviveAServerRestart() throws Exception {
        Path pool = dir.resolve("pool");
        String ids = nvmeField("nguid", "nvme id-ns $ns2", "nguid")
                + nvmeField("eui64", "nvme id-ns $ns2", "eui64")
                + GuestScripts.report("uuid", "nvme ns-descs $ns2 | sed -n 's/^uuid *: *//p'")
                + GuestScripts.report("wwid", "cat /sys/block/${ns2##*/}/wwid")
                + GuestScripts.report("lbs", "cat /sys/block/${ns2##*/}/queue/logical_block_size")
                + GuestScripts.report("sum", "dd if=$ns2 bs=1M count=8 iflag=direct 2>/dev/null | sha256sum | cut -c1-64");
        String first = GuestScripts.waitFor("/dev/nvme0n1", 30)
                + run("create", "nvme create-ns /dev/nvme0 --nsze=8192 --ncap=8192 --block-size=4096")
                + run("attach", "nvme attach-ns /dev/nvme0 --namespace-id=2 --controllers=1")
                + GuestScripts.waitForNamespace(2, 30)
                + "dd if=/dev/urandom of=$ns2 bs=1M count=8 oflag=direct conv=fsync 2>/dev/null\n"
                + ids;
        String second = GuestScripts.waitForNamespace(1, 30) + GuestScripts.waitForNamespace(2, 30) + ids
                + GuestScripts.report("allocated", "nvme list-ns /dev/nvme0 --all | grep -c '^\\['");
        QemuGuest.Outcome before, after;
        try (JavaNvmeServer server = JavaNvmeServer.start(dir, poolOptions(pool));
             QemuGuest guest = new QemuGuest.Spec("ns-restart-1", dir).vfioUser(server.socketName()).script(first).start()) {
            before = guest.awaitExit(Duration.ofMinutes(4));
            String why = "\n" + before.tail() + "\nserver log:\n" + server.logTail();
            assertTrue(before.finished(), why);
            assertEquals(0, before.getLong("create.rc"), why);
            assertEquals(0, before.getLong("attach.rc"), why);
            assertEquals("yes", before.get("present.ns2"), why);
            assertEquals(4096, before.getLong("lbs"), "create-ns --block-size=4096 picked LBA format 1" + why);
        }
        try (JavaNvmeServer server = JavaNvmeServer.start(dir, poolOptions(pool));
             QemuGuest guest = new QemuGuest.Spec("ns-restart-2", dir).vfioUser(server.socketName()).script(second).start()) {
            after = guest.awaitExit(Duration.ofMinutes(4));
            String why = "\n" + after.tail() + "\nserver log:\n" + server.logTail();
            assertTrue(after.finished(), why);
            assertEquals("yes", after.get("present.ns1"), "the seed namespace is back" + why);
            assertEquals("yes", after.get("present.ns2"), "the created namespace is back, attached" + why);
            assertEquals(2, after.getLong("allocated"), why);
            for (String key : new String[] {"nguid", "eui64", "uuid", "wwid", "lbs", "sum"}) {
                assertFalse(before.get(key).isBlank(), key + why);
                assertEquals(before.get(key), after.get(key), key + " is the same after the restart" + why);
            }
        }
    }
}
