package io.javadevices.qemutests;

import io.javadevices.qemutests.harness.GuestScripts;
import io.javadevices.qemutests.harness.QemuGuest;
import io.javadevices.qemutests.harness.RpcClient;
import io.javadevices.qemutests.harness.ServerProcess;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * One server process, two controllers, two guests at once; one guest crashes and the other never notices. The
 * packaged server starts with only a control socket ({@code --rpc-socket}, no {@code --socket}); two NVMe
 * controllers are added over JSON-RPC, each on its own vfio-user socket with its own RAM namespace. Two QEMU
 * guests (one vCPU each) boot at the same time: "victim" writes a flushed pattern and then random writes without
 * end; "survivor" runs fio verify pass after pass for a fixed time. While both do I/O, {@code stats_get} shows both
 * controllers' commands, and the victim's QEMU is SIGKILLed. The survivor's passes that ran after the kill pass
 * verification and its controller keeps counting commands; the killed controller shows disconnected with its DMA
 * maps and eventfds released; a third guest attaches to the killed one's socket and reads back the victim's
 * flushed pattern; {@code server_shutdown} then ends the server with exit status 0 (every flush succeeded).
 */
class ManyControllersIT {
    /** How long the survivor keeps starting verify passes, from its first one: the kill must fall inside. */
    private static final int SURVIVOR_SECONDS = 90;
    private static final int PATTERN_MIB = 8;

    @TempDir
    Path dir;

    @Test
    void oneGuestKilledMidIoWhileTheOtherVerifiesOnTheSameServer() throws Exception {
        Path rpcSocket = dir.resolve("rpc.sock");
        Path vm1 = dir.resolve("vm1.sock");
        Path vm2 = dir.resolve("vm2.sock");
        String survivorScript = GuestScripts.waitFor("/dev/nvme0n1", 60)
                + "end=$(( $(date +%s) + " + SURVIVOR_SECONDS + " ))\n"
                + GuestScripts.fioPasses("survivor", "--filename=/dev/nvme0n1 --ioengine=libaio --direct=1 --iodepth=16"
                + " --size=16M --rw=randwrite --bsrange=4k-128k --verify=crc32c --do_verify=1 --verify_fatal=1",
                "[ $(date +%s) -ge $end ]");
        try (ServerProcess server = ServerProcess.startWithRpc("many", rpcSocket);
             RpcClient rpc = RpcClient.connect(rpcSocket)) {
            assertEquals(Map.of("socket", vm1.toString(), "device", "nvme"), rpc.controllerAdd(vm1, 1, Map.of(), "ram:64M"));
            assertEquals(Map.of("socket", vm2.toString(), "device", "nvme"), rpc.controllerAdd(vm2, 1, Map.of(), "ram:64M"));
            assertEquals(2, rpc.controllerList().size(), "two controllers: " + rpc.controllerList());
            assertEquals(false, rpc.controller(vm1).get("connected"));

            String flushedSum;
            String busyStats;
            boolean perQueueCounted;
            long survivorCommandsAtKill;
            int passesStartedAtKill;
            QemuGuest.Outcome survivorOut;
            try (QemuGuest victim = guest("victim", vm1, GuestScripts.flushedPatternThenEndlessWrites(PATTERN_MIB));
                 QemuGuest survivor = guest("survivor", vm2, survivorScript)) {
                String why = "\nserver output:\n" + server.logTail();
                assertTrue(victim.awaitOutput("@@RESULT flushed=yes", Duration.ofMinutes(4)),
                        "the victim never flushed its pattern:\n" + victim.consoleTail(40) + why);
                flushedSum = victim.result("sum");
                assertTrue(survivor.awaitOutput("@@MARK survivor-pass-done 1", Duration.ofMinutes(3)),
                        "the survivor never finished a verify pass:\n" + survivor.consoleTail(40) + why);
                // Both controllers are busy: the victim's endless writer and the survivor's passes.
                RpcClient.ControllerStats victimBefore = rpc.statsGet(vm1);
                awaitCommands(rpc, vm1, victimBefore.device("io.writes") + 200, "io.writes", server);
                RpcClient.ControllerStats victimStats = rpc.statsGet(vm1);
                RpcClient.ControllerStats survivorStats = rpc.statsGet(vm2);
                String stats = "\nvictim stats: " + victimStats.raw() + "\nsurvivor stats: " + survivorStats.raw();
                assertTrue(victimStats.device("io.commands") > 0 && survivorStats.device("io.commands") > 0,
                        "stats_get counts both controllers' commands" + stats);
                busyStats = stats;
                perQueueCounted = victimStats.queueTotal("commands") > 0 && survivorStats.queueTotal("commands") > 0;
                assertTrue(victimStats.server("dma.maps") > 0 && victimStats.server("irq.fds") > 0,
                        "the victim's client holds DMA maps and eventfds" + stats);
                assertEquals(true, rpc.controller(vm1).get("connected"));
                assertEquals(true, rpc.controller(vm2).get("connected"));

                passesStartedAtKill = survivor.occurrences("@@MARK survivor-pass-start ");
                survivorCommandsAtKill = survivorStats.device("io.commands");
                assertTrue(survivor.isRunning() && !survivor.console().contains("@@RESULT survivor.passes="),
                        "the survivor is still verifying when the victim dies");
                victim.kill();
                System.out.printf("[many] victim SIGKILLed during the survivor's pass %d%n", passesStartedAtKill);

                awaitDisconnected(rpc, vm1, server);
                RpcClient.ControllerStats released = rpc.statsGet(vm1);
                assertEquals(0, released.server("dma.maps"), "the killed client's DMA maps released: " + released.raw());
                assertEquals(0, released.server("irq.fds"), "the killed client's eventfds released: " + released.raw());
                assertEquals(true, rpc.controller(vm2).get("connected"), "the survivor's client is still connected");

                survivorOut = survivor.awaitExit(Duration.ofSeconds(SURVIVOR_SECONDS + 240L));
                why = "\n" + survivorOut.tail() + "\nserver output:\n" + server.logTail();
                assertTrue(survivorOut.finished(), "the survivor did not finish" + why);
                long passes = survivorOut.getLong("survivor.passes");
                assertTrue(passes > passesStartedAtKill,
                        "at least one whole verify pass ran after the kill (" + passes + " passes, kill in pass "
                                + passesStartedAtKill + ")" + why);
                assertEquals(0, survivorOut.getLong("survivor.failed"), "every verify pass passed" + why);
                assertTrue(rpc.statsGet(vm2).device("io.commands") > survivorCommandsAtKill,
                        "the survivor's controller kept executing commands after the kill" + why);
            }

            // The killed controller is reusable: a new guest attaches to its socket and finds the flushed pattern.
            String reader = GuestScripts.waitFor("/dev/nvme0n1", 60)
                    + GuestScripts.checksumOfStart("sum", PATTERN_MIB)
                    + GuestScripts.fio("after", "--filename=/dev/nvme0n1 --offset=16M --size=16M --ioengine=libaio"
                    + " --direct=1 --iodepth=16 --rw=randwrite --bsrange=4k-128k --verify=crc32c --do_verify=1 --verify_fatal=1");
            try (QemuGuest third = guest("third", vm1, reader)) {
                QemuGuest.Outcome out = third.awaitExit(Duration.ofMinutes(4));
                String why = "\n" + out.tail() + "\nserver output:\n" + server.logTail();
                assertTrue(out.finished(), "the third guest did not finish" + why);
                assertEquals(flushedSum, out.get("sum"), "the victim's flushed pattern survived its crash" + why);
                assertEquals(0, out.getLong("fio.after.rc"), why);
                assertEquals(0, out.getLong("fio.after.err"), why);
            }
            assertEquals(2L, rpc.controller(vm1).get("clients_total"), "the killed guest's and the third guest's sessions");
            assertTrue(server.isAlive(), "the server kept serving\n" + server.logTail());

            assertEquals(Map.of("shutting_down", true), rpc.serverShutdown());
            assertEquals(0, server.awaitExit(Duration.ofSeconds(30)),
                    "server_shutdown flushed both controllers and exited 0\n" + server.logTail());
            // Last, so that a device without per-queue counters does not hide the outcome of everything above.
            assertTrue(perQueueCounted, "stats_get counted commands per queue (sq<N>.commands) of both controllers"
                    + busyStats);
        }
    }

    private QemuGuest guest(String name, Path socket, String script) {
        return new QemuGuest.Spec(name, dir).cpus(1).memoryMiB(512).vfioUser(socket.getFileName().toString())
                .script(GuestScripts.header() + script).start();
    }

    /** Waits until the controller on {@code socket} counted {@code key} up to {@code atLeast}. */
    private static void awaitCommands(RpcClient rpc, Path socket, long atLeast, String key, ServerProcess server)
            throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (rpc.statsGet(socket).device(key) < atLeast && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
        assertTrue(rpc.statsGet(socket).device(key) >= atLeast,
                socket.getFileName() + " reached " + key + " " + atLeast + "\n" + server.logTail());
    }

    /** Waits until {@code controller_list} shows the controller on {@code socket} without a client. */
    private static void awaitDisconnected(RpcClient rpc, Path socket, ServerProcess server) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (!Boolean.FALSE.equals(rpc.controller(socket).get("connected")) && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
        assertEquals(false, rpc.controller(socket).get("connected"),
                "controller_list shows the killed guest's controller disconnected\n" + server.logTail());
    }
}
