package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What fio's randwrite with {@code verify=} does at QD32, for the asynchronous engines' tests: every 4 KiB block
 * of a namespace written once with its own pattern ({@link GuestBytes#pattern}), in random order, 32 in flight,
 * every 16th with FUA; a buffer per command in flight, so a buffer is reused only once its write completed.
 */
final class DeepWrites {
    static final int DEPTH = 32;

    private DeepWrites() {
    }

    /** Writes blocks {@code 0..blocks-1} of NSID 1 through {@code q}; returns the 32 buffer pages it used. */
    static long writeAll(Fixture f, HostQueue q, int blocks) {
        int[] order = new Random(14).ints(0, blocks).distinct().limit(blocks).toArray();
        long bufs = f.host.allocatePages(DEPTH);
        Map<Integer, Integer> slotOfCid = new HashMap<>();
        int next = 0, done = 0;
        while (done < blocks) {
            while (next < blocks && q.inflight() < DEPTH) {
                int slot = 0;
                while (slotOfCid.containsValue(slot)) {
                    slot++;
                }
                GuestBytes.put(f, bufs + 4096L * slot, GuestBytes.pattern(order[next], 4096));
                int cid = q.submit(Command.write(1, 8L * order[next], 8, bufs + 4096L * slot, 0)
                        .cdw(12, 7 | (next % 16 == 0 ? 1 << 30 : 0))); // now and then FUA
                slotOfCid.put(cid, slot);
                next++;
            }
            for (Completion c : q.awaitCompletions(1, Duration.ofSeconds(10))) {
                assertTrue(c.ok(), c.toString());
                slotOfCid.remove(c.cid());
                done++;
            }
        }
        return bufs;
    }
}
