package io.javadevices.nvme.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

import static io.javadevices.nvme.nbd.NbdProtocol.*;

/**
 * The client side of the fixed newstyle negotiation (proto.md "Handshake"; what QEMU's {@code nbd/client.c}
 * {@code nbd_receive_negotiate} does): NBD_OPT_GO with the export name and requests for NBD_INFO_EXPORT and
 * NBD_INFO_BLOCK_SIZE, falling back to NBD_OPT_EXPORT_NAME on servers that answer NBD_REP_ERR_UNSUP. Structured
 * replies are not negotiated: every transmission reply is a simple one. Runs on the blocking socket, before the
 * connection's threads start; a server that stops talking is cut off by the caller's deadline.
 */
final class NbdHandshake {
    /** Longest option reply payload accepted (an error message or an info block is far shorter). */
    private static final int MAX_OPTION_REPLY = 64 * 1024;

    private final NbdSocket socket;
    private final NbdUri uri;

    NbdHandshake(NbdSocket socket, NbdUri uri) {
        this.socket = socket;
        this.uri = uri;
    }

    NbdExport negotiate() throws IOException {
        ByteBuffer hello = read(18);
        if (hello.getLong() != NBDMAGIC) {
            throw new NbdException(uri.where() + " is not an NBD server (no NBDMAGIC)");
        }
        long style = hello.getLong();
        if (style == OLDSTYLE_MAGIC) {
            throw new NbdException(uri.where() + " speaks the oldstyle NBD handshake, which has no export names;"
                    + " use a newstyle server (qemu-nbd, nbdkit, nbd-server)");
        }
        if (style != IHAVEOPT) {
            throw new NbdException(uri.where() + " sent a bad handshake magic 0x" + Long.toHexString(style));
        }
        int serverFlags = hello.getShort() & 0xFFFF;
        boolean fixed = (serverFlags & FLAG_FIXED_NEWSTYLE) != 0;
        boolean noZeroes = (serverFlags & FLAG_NO_ZEROES) != 0;
        int clientFlags = (fixed ? FLAG_C_FIXED_NEWSTYLE : 0) | (noZeroes ? FLAG_C_NO_ZEROES : 0);
        write(ByteBuffer.allocate(4).putInt(clientFlags).flip());
        byte[] name = uri.export().getBytes(StandardCharsets.UTF_8);
        if (fixed) {
            NbdExport export = go(name);
            if (export != null) {
                return checked(export);
            }
        }
        return checked(exportName(name, noZeroes));
    }

    /** NBD_OPT_GO; null if the server does not know the option. */
    private NbdExport go(byte[] name) throws IOException {
        ByteBuffer request = ByteBuffer.allocate(16 + 4 + name.length + 2 + 4);
        request.putLong(IHAVEOPT).putInt(OPT_GO).putInt(4 + name.length + 2 + 4);
        request.putInt(name.length).put(name).putShort((short) 2).putShort((short) INFO_EXPORT)
                .putShort((short) INFO_BLOCK_SIZE);
        write(request.flip());
        long size = -1;
        int flags = 0, minBlock = 1, maxBlock = 0;
        while (true) {
            ByteBuffer header = read(20);
            if (header.getLong() != OPTION_REPLY_MAGIC) {
                throw new NbdException(uri.where() + " sent a bad option reply magic");
            }
            int option = header.getInt();
            int type = header.getInt();
            int length = header.getInt();
            if (option != OPT_GO) {
                throw new NbdException(uri.where() + " answered option " + option + " to NBD_OPT_GO");
            }
            if (length < 0 || length > MAX_OPTION_REPLY) {
                throw new NbdException(uri.where() + " sent an option reply of " + Integer.toUnsignedString(length)
                        + " bytes");
            }
            ByteBuffer data = read(length);
            if (type == REP_INFO) {
                if (length < 2) {
                    throw new NbdException(uri.where() + " sent an empty NBD_REP_INFO");
                }
                int info = data.getShort() & 0xFFFF;
                if (info == INFO_EXPORT) {
                    expectLength(length, 12, "NBD_INFO_EXPORT");
                    size = data.getLong();
                    flags = data.getShort() & 0xFFFF;
                } else if (info == INFO_BLOCK_SIZE) {
                    expectLength(length, 14, "NBD_INFO_BLOCK_SIZE");
                    minBlock = data.getInt();
                    data.getInt(); // preferred: requests follow the guest's LBA size anyway
                    maxBlock = data.getInt();
                } // other information is ignored, as the protocol asks
            } else if (type == REP_ACK) {
                if (size < 0) {
                    throw new NbdException(uri.where() + " finished NBD_OPT_GO without NBD_INFO_EXPORT");
                }
                return new NbdExport(size, flags, minBlock, payloadLimit(minBlock, maxBlock));
            } else if (type == REP_ERR_UNSUP) {
                return null; // an old server: NBD_OPT_EXPORT_NAME instead
            } else if ((type & REP_FLAG_ERROR) != 0) {
                throw refused(type, data);
            } else {
                throw new NbdException(uri.where() + " sent an unexpected " + replyName(type) + " to NBD_OPT_GO");
            }
        }
    }

    /** NBD_OPT_EXPORT_NAME: the server answers with size and flags, or closes the connection. */
    private NbdExport exportName(byte[] name, boolean noZeroes) throws IOException {
        ByteBuffer request = ByteBuffer.allocate(16 + name.length);
        request.putLong(IHAVEOPT).putInt(OPT_EXPORT_NAME).putInt(name.length).put(name);
        write(request.flip());
        ByteBuffer reply;
        try {
            reply = read(noZeroes ? 10 : 10 + 124);
        } catch (EOFException e) {
            throw new NbdException("export '" + uri.export() + "' not found on " + uri.where()
                    + " (the server closed the connection)");
        }
        return new NbdExport(reply.getLong(), reply.getShort() & 0xFFFF, 1, DEFAULT_MAX_PAYLOAD);
    }

    private NbdExport checked(NbdExport export) throws NbdException {
        if (export.size() <= 0 || export.size() % 512 != 0) {
            throw new NbdException("export '" + uri.export() + "' on " + uri.where() + " has " + export.size()
                    + " bytes: an NVMe namespace needs a positive multiple of 512");
        }
        if ((export.flags() & TF_HAS_FLAGS) == 0) {
            return new NbdExport(export.size(), 0, export.minBlock(), export.maxPayload()); // flags are meaningless
        }
        return export;
    }

    /** The read/write piece size: the server's maximum block, within the portable 32 MiB and at least 4 KiB. */
    private int payloadLimit(int minBlock, int maxBlock) throws NbdException {
        if (minBlock < 1 || minBlock > 65536 || Integer.bitCount(minBlock) != 1) {
            throw new NbdException(uri.where() + " sent a bad minimum block size " + Integer.toUnsignedString(minBlock));
        }
        if (maxBlock == 0) {
            return DEFAULT_MAX_PAYLOAD;
        }
        if (Integer.compareUnsigned(maxBlock, 4096) < 0) {
            throw new NbdException(uri.where() + " allows only " + maxBlock + "-byte requests; at least 4096 are needed");
        }
        return Integer.compareUnsigned(maxBlock, DEFAULT_MAX_PAYLOAD) > 0 ? DEFAULT_MAX_PAYLOAD : maxBlock & ~511;
    }

    private NbdException refused(int type, ByteBuffer data) {
        String message = StandardCharsets.UTF_8.decode(data).toString();
        String detail = message.isBlank() ? "" : " (" + message.strip() + ")";
        return switch (type) {
            case REP_ERR_UNKNOWN -> new NbdException("export '" + uri.export() + "' not found on " + uri.where() + detail);
            case REP_ERR_TLS_REQD -> new NbdException(uri.where() + " requires TLS, which this client does not speak" + detail);
            default -> new NbdException(uri.where() + " refused export '" + uri.export() + "': " + replyName(type) + detail);
        };
    }

    private void expectLength(int length, int expected, String what) throws NbdException {
        if (length != expected) {
            throw new NbdException(uri.where() + " sent " + what + " of " + length + " bytes, not " + expected);
        }
    }

    private ByteBuffer read(int n) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(n);
        socket.readFully(buffer, uri.where() + " closed the connection during the handshake");
        return buffer.flip();
    }

    private void write(ByteBuffer buffer) throws IOException {
        socket.writeFully(buffer);
    }
}
