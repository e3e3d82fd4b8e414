package io.javadevices.nvme.nbd;

/**
 * Numbers of the NBD protocol (the nbd project's {@code doc/proto.md}; the same names as its {@code nbd.h} and
 * QEMU's {@code include/block/nbd.h}). All fields travel big-endian.
 */
final class NbdProtocol {
    private NbdProtocol() {
    }

    // Handshake ("Fixed newstyle negotiation").
    static final long NBDMAGIC = 0x4e42444d41474943L;        // "NBDMAGIC"
    static final long IHAVEOPT = 0x49484156454F5054L;        // "IHAVEOPT": newstyle
    static final long OLDSTYLE_MAGIC = 0x00420281861253L;    // oldstyle servers: not spoken here
    static final long OPTION_REPLY_MAGIC = 0x0003e889045565a9L;
    static final int FLAG_FIXED_NEWSTYLE = 1, FLAG_NO_ZEROES = 2;          // server handshake flags
    static final int FLAG_C_FIXED_NEWSTYLE = 1, FLAG_C_NO_ZEROES = 2;      // client flags

    static final int OPT_EXPORT_NAME = 1, OPT_ABORT = 2, OPT_GO = 7;
    static final int REP_ACK = 1, REP_INFO = 3;
    static final int REP_FLAG_ERROR = 1 << 31;
    static final int REP_ERR_UNSUP = REP_FLAG_ERROR | 1, REP_ERR_POLICY = REP_FLAG_ERROR | 2,
            REP_ERR_INVALID = REP_FLAG_ERROR | 3, REP_ERR_PLATFORM = REP_FLAG_ERROR | 4,
            REP_ERR_TLS_REQD = REP_FLAG_ERROR | 5, REP_ERR_UNKNOWN = REP_FLAG_ERROR | 6,
            REP_ERR_SHUTDOWN = REP_FLAG_ERROR | 7, REP_ERR_BLOCK_SIZE_REQD = REP_FLAG_ERROR | 8,
            REP_ERR_TOO_BIG = REP_FLAG_ERROR | 9;
    static final int INFO_EXPORT = 0, INFO_BLOCK_SIZE = 3;

    // Transmission flags (NBD_INFO_EXPORT / NBD_OPT_EXPORT_NAME reply).
    static final int TF_HAS_FLAGS = 1, TF_READ_ONLY = 1 << 1, TF_SEND_FLUSH = 1 << 2, TF_SEND_FUA = 1 << 3,
            TF_SEND_TRIM = 1 << 5, TF_SEND_WRITE_ZEROES = 1 << 6, TF_CAN_MULTI_CONN = 1 << 8;

    // Transmission phase.
    static final int REQUEST_MAGIC = 0x25609513, SIMPLE_REPLY_MAGIC = 0x67446698;
    static final int REQUEST_BYTES = 28, REPLY_BYTES = 16;
    static final int CMD_READ = 0, CMD_WRITE = 1, CMD_DISC = 2, CMD_FLUSH = 3, CMD_TRIM = 4, CMD_WRITE_ZEROES = 6;
    static final int CMD_FLAG_FUA = 1, CMD_FLAG_NO_HOLE = 1 << 1;

    /** What a payload may be without the server saying more (proto.md: portable clients stay at or below 32 MiB). */
    static final int DEFAULT_MAX_PAYLOAD = 32 << 20;
    /** Trim and Write Zeroes pieces: no payload, so not bound by the block size; QEMU caps them near INT_MAX too. */
    static final long MAX_EFFECT_LENGTH = 1L << 30;

    // Linux errnos (what the NVMe core maps to statuses).
    static final int EPERM = 1, EIO = 5, ENOMEM = 12, EINVAL = 22, ENOSPC = 28, EROFS = 30, EOVERFLOW = 75,
            EOPNOTSUPP = 95, ENOTCONN = 107, ESHUTDOWN = 108, ETIMEDOUT = 110;

    /**
     * A simple reply's error field as a negated Linux errno. The protocol's values are Linux's (EPERM, EIO, ENOMEM,
     * EINVAL, ENOSPC, EOVERFLOW, ENOTSUP, ESHUTDOWN); anything else a server sends is an I/O error. ESHUTDOWN (the
     * server is going away) is reported as "not connected": the request may succeed after a reconnection.
     */
    static int errno(int nbdError) {
        return switch (nbdError) {
            case EPERM, EIO, ENOMEM, EINVAL, ENOSPC, EOVERFLOW, EOPNOTSUPP -> -nbdError;
            case ESHUTDOWN -> -ENOTCONN;
            default -> -EIO;
        };
    }

    static String replyName(int type) {
        return switch (type) {
            case REP_ERR_UNSUP -> "NBD_REP_ERR_UNSUP";
            case REP_ERR_POLICY -> "NBD_REP_ERR_POLICY";
            case REP_ERR_INVALID -> "NBD_REP_ERR_INVALID";
            case REP_ERR_PLATFORM -> "NBD_REP_ERR_PLATFORM";
            case REP_ERR_TLS_REQD -> "NBD_REP_ERR_TLS_REQD";
            case REP_ERR_UNKNOWN -> "NBD_REP_ERR_UNKNOWN";
            case REP_ERR_SHUTDOWN -> "NBD_REP_ERR_SHUTDOWN";
            case REP_ERR_BLOCK_SIZE_REQD -> "NBD_REP_ERR_BLOCK_SIZE_REQD";
            case REP_ERR_TOO_BIG -> "NBD_REP_ERR_TOO_BIG";
            default -> "reply type 0x" + Integer.toHexString(type);
        };
    }
}
