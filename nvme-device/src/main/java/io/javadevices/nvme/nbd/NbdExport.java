package io.javadevices.nvme.nbd;

import static io.javadevices.nvme.nbd.NbdProtocol.*;

/**
 * What the handshake learnt about an export.
 *
 * @param size       bytes (NBD_INFO_EXPORT)
 * @param flags      transmission flags
 * @param minBlock   the server's minimum block size (1 if it gave none)
 * @param maxPayload the largest read or write payload this client sends: the server's maximum block size,
 *                   at most {@link NbdProtocol#DEFAULT_MAX_PAYLOAD} (the portable limit when it gave none)
 */
record NbdExport(long size, int flags, int minBlock, int maxPayload) {

    boolean readOnly() {
        return (flags & TF_READ_ONLY) != 0;
    }

    boolean canFlush() {
        return (flags & TF_SEND_FLUSH) != 0;
    }

    boolean canFua() {
        return (flags & TF_SEND_FUA) != 0;
    }

    boolean canTrim() {
        return (flags & TF_SEND_TRIM) != 0;
    }

    boolean canWriteZeroes() {
        return (flags & TF_SEND_WRITE_ZEROES) != 0;
    }

    boolean canMultiConn() {
        return (flags & TF_CAN_MULTI_CONN) != 0;
    }

    String describeFlags() {
        StringBuilder b = new StringBuilder();
        if (readOnly()) b.append(" read-only");
        if (canFlush()) b.append(" flush");
        if (canFua()) b.append(" fua");
        if (canTrim()) b.append(" trim");
        if (canWriteZeroes()) b.append(" write-zeroes");
        if (canMultiConn()) b.append(" multi-conn");
        return b.isEmpty() ? "none" : b.toString().trim();
    }
}
