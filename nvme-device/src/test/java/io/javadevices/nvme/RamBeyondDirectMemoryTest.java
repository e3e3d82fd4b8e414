package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.HostQueue;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A {@code ram:} namespace larger than the JVM's direct-memory limit works (issue 11 item 8): a child JVM
 * with {@code -XX:MaxDirectMemorySize=16m} fills a 64 MiB namespace through the controller and reads it
 * back. Before, RAM chunks were Arena allocations charged against that limit and writes past 16 MiB
 * failed with Internal Error. A child JVM because the surefire JVM's options are shared by every test.
 */
class RamBeyondDirectMemoryTest {
    static final int MIB = 64;

    @Test
    void sixtyFourMibNamespaceUnderASixteenMibDirectMemoryLimit() throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process child = new ProcessBuilder(List.of(java, "-XX:MaxDirectMemorySize=16m", "-XX:TieredStopAtLevel=1",
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"), Child.class.getName()))
                .redirectErrorStream(true).start();
        String out = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(child.waitFor(30, TimeUnit.SECONDS), "child JVM finished");
        assertEquals(0, child.exitValue(), out);
        assertTrue(out.contains("wrote and read back " + MIB + " MiB"), out);
    }

    /** The child: writes every MiB of a 64 MiB ram: namespace with a distinct byte, then reads each back. */
    static final class Child {
        public static void main(String[] args) throws Exception {
            try (Fixture f = new Fixture(java.util.Map.of("namespaces", "ram:" + MIB + "M", "queues", "1", "mdts", "8"), 8L << 20)) {
                f.driver.bringUp(1, 16, true);
                HostQueue q = f.driver.ioQueue(1);
                long buf = f.host.allocatePages(256);
                long prpList = f.host.allocatePages(1);
                byte[] mib = new byte[1 << 20];
                for (int m = 0; m < MIB; m++) {
                    java.util.Arrays.fill(mib, (byte) (m + 1));
                    f.host.memory().write(buf, mib, 0, mib.length);
                    var c = q.execute(prps(Command.write(1, (long) m << 11, 2048, 0, 0), f, buf, prpList));
                    if (!c.ok()) {
                        throw new AssertionError("write of MiB " + m + ": " + c);
                    }
                }
                for (int m = 0; m < MIB; m++) {
                    var c = q.execute(prps(Command.read(1, (long) m << 11, 2048, 0, 0), f, buf, prpList));
                    f.host.memory().read(buf, mib, 0, mib.length);
                    if (!c.ok() || mib[0] != (byte) (m + 1) || mib[mib.length - 1] != (byte) (m + 1)) {
                        throw new AssertionError("read of MiB " + m + ": " + c + " first byte " + mib[0]);
                    }
                }
                System.out.println("wrote and read back " + MIB + " MiB");
            }
        }

        private static Command prps(Command c, Fixture f, long buf, long prpList) {
            f.driver.setPrps(c, pages(buf), 0, 1 << 20, prpList);
            return c;
        }

        private static long[] pages(long buf) {
            long[] pages = new long[256];
            for (int i = 0; i < pages.length; i++) {
                pages[i] = buf + 4096L * i;
            }
            return pages;
        }
    }
}
