package io.javadevices.nvme.io;

import io.javadevices.nvme.queue.CommandHandler;
import io.javadevices.nvme.queue.OpcodeTable;
import io.javadevices.nvme.spec.Nvme;

import static io.javadevices.nvme.queue.OpcodeTable.CSUPP;
import static io.javadevices.nvme.queue.OpcodeTable.LBCC;

/**
 * The NVM command set (NVMe 1.4 §6), as QEMU's nvme_cse_iocs_nvm: dispatch, the I/O half of the Commands
 * Supported and Effects log and Identify Controller ONCS all come from {@link #TABLE}.
 *
 * <pre>
 * 00h Flush                                   CSUPP
 * 01h Write                                   CSUPP LBCC
 * 02h Read                                    CSUPP
 * 04h Write Uncorrectable ONCS bit 1          CSUPP LBCC  → {@link WriteUncorrectableCommand}
 * 05h Compare             ONCS bit 0          CSUPP       → {@link CompareCommand}
 * 08h Write Zeroes        ONCS bit 3          CSUPP LBCC  (deallocate bit)
 * 09h Dataset Management  ONCS bit 2          CSUPP LBCC  (deallocate)
 * 0Ch Verify              ONCS bit 7          CSUPP       → {@link VerifyCommand}
 * 19h Copy                ONCS bit 8          CSUPP LBCC  → {@link CopyCommand} (NVMe 2.0 NVM Command Set)
 * </pre>
 */
public final class NvmOpcodes {
    /** ONCS (Identify Controller bytes 521:520): bit 2 Dataset Management, bit 3 Write Zeroes. */
    public static final int ONCS_DSM = 1 << 2, ONCS_WRITE_ZEROES = 1 << 3;
    /** ONCS bit 0 Compare, bit 1 Write Uncorrectable, bit 7 Verify, bit 8 Copy (NVMe 2.0). */
    public static final int ONCS_COMPARE = 1, ONCS_WRITE_UNCORRECTABLE = 1 << 1, ONCS_VERIFY = 1 << 7,
            ONCS_COPY = 1 << 8;

    public static final OpcodeTable<IoCommandHandler> TABLE = OpcodeTable.<IoCommandHandler>builder()
            .add(Nvme.IO_FLUSH, "Flush", CSUPP,
                    (h, cmd, w) -> CommandHandler.result(h.flush(cmd, w)))
            .add(Nvme.IO_WRITE, "Write", LBCC,
                    (h, cmd, w) -> CommandHandler.result(h.readWrite(cmd, w, h.stats(w), true)))
            .add(Nvme.IO_READ, "Read", CSUPP,
                    (h, cmd, w) -> CommandHandler.result(h.readWrite(cmd, w, h.stats(w), false)))
            .add(Nvme.IO_WRITE_UNCORRECTABLE, "Write Uncorrectable", LBCC, null, ONCS_WRITE_UNCORRECTABLE,
                    (h, cmd, w) -> CommandHandler.result(h.writeUncorrectable.execute(cmd, w.queue().qid)))
            .add(Nvme.IO_COMPARE, "Compare", CSUPP, null, ONCS_COMPARE,
                    (h, cmd, w) -> CommandHandler.result(h.compare.execute(cmd, w)))
            .add(Nvme.IO_WRITE_ZEROES, "Write Zeroes", LBCC, null, ONCS_WRITE_ZEROES,
                    (h, cmd, w) -> CommandHandler.result(h.writeZeroes(cmd, w)))
            .add(Nvme.IO_DSM, "Dataset Management", LBCC, null, ONCS_DSM,
                    (h, cmd, w) -> CommandHandler.result(h.datasetManagement(cmd, w)))
            .add(Nvme.IO_VERIFY, "Verify", CSUPP, null, ONCS_VERIFY,
                    (h, cmd, w) -> CommandHandler.result(h.verify.execute(cmd, w)))
            .add(Nvme.IO_COPY, "Copy", LBCC, null, ONCS_COPY,
                    (h, cmd, w) -> CommandHandler.result(h.copy.execute(cmd, w)))
            .build();

    private NvmOpcodes() {
    }
}
