package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.nvme.spec.Nvme;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/**
 * The Commands Supported and Effects log, OACS and ONCS say exactly what the controller executes: an
 * opcode the log lists is never answered Invalid Command Opcode, every other opcode is.
 */
class CommandTablesTest {
    private static final int INVALID_OPCODE = 0x01;

    private static ByteBuffer effectsLog(Fixture f) {
        long page = f.driver.dataPage();
        assertEquals(true, f.driver.admin(Command.getLogPage(0x05, 0, 4096, page)).ok());
        return ByteBuffer.wrap(f.driver.readData(4096)).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static boolean invalidOpcode(Completion c) {
        return c.sct() == 0 && c.sc() == INVALID_OPCODE;
    }

    @Test
    void adminOpcodesExecutedAreTheOnesTheEffectsLogLists() {
        for (String dbbuf : new String[] {"on", "off"}) {
            try (Fixture f = Fixture.of("queues", "2", "dbbuf", dbbuf)) {
                f.driver.enable();
                ByteBuffer log = effectsLog(f);
                byte[] id = f.driver.identify(0x01, 0);
                int oacs = (id[256] & 0xFF) | (id[257] & 0xFF) << 8;
                assertEquals((log.getInt(4 * 0x7C) & 1) << 8, oacs & 0x100, "OACS bit 8 follows the log, dbbuf=" + dbbuf);
                for (int op = 0; op < 256; op++) {
                    if (op == Nvme.ADM_ASYNC_EVENT_REQUEST) {
                        continue; // completes only when an event occurs
                    }
                    boolean listed = (log.getInt(4 * op) & 1) != 0;
                    Completion c = f.driver.admin(Command.of(op));
                    assertEquals(!listed, invalidOpcode(c), "admin opcode " + Integer.toHexString(op) + " dbbuf=" + dbbuf + ": " + c);
                }
                assertEquals(dbbuf.equals("on"), (log.getInt(4 * 0x7C) & 1) != 0);
            }
        }
    }

    @Test
    void nvmOpcodesExecutedAreTheOnesTheEffectsLogListsAndOncsFollows() {
        try (Fixture f = Fixture.of("queues", "2")) {
            f.driver.enable();
            ByteBuffer log = effectsLog(f);
            byte[] id = f.driver.identify(0x01, 0);
            int oncs = (id[520] & 0xFF) | (id[521] & 0xFF) << 8;
            assertEquals((log.getInt(1024 + 4 * Nvme.IO_DSM) & 1) << 2, oncs & 0x04, "ONCS DSM");
            assertEquals((log.getInt(1024 + 4 * Nvme.IO_WRITE_ZEROES) & 1) << 3, oncs & 0x08, "ONCS Write Zeroes");
            assertNotEquals(0, log.getInt(1024 + 4 * Nvme.IO_WRITE) & 2, "Write changes LBA content (LBCC)");
            f.driver.setNumberOfQueues(1);
            HostQueue q = f.driver.createQueuePair(1, 16, 0);
            for (int op = 0; op < 256; op++) {
                boolean listed = (log.getInt(1024 + 4 * op) & 1) != 0;
                Completion c = q.execute(Command.of(op));
                assertEquals(!listed, invalidOpcode(c), "I/O opcode " + Integer.toHexString(op) + ": " + c);
            }
        }
    }
}
