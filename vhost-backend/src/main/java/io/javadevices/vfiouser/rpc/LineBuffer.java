package io.javadevices.vfiouser.rpc;

import java.util.Arrays;

/**
 * Splits a byte stream into {@code \n}-terminated lines of at most {@link #maxLine} bytes (a trailing {@code \r}
 * is dropped, for clients that send CRLF). The buffer grows with the longest line seen, never beyond the limit,
 * so a client cannot make the server hold more than one limit's worth of bytes.
 */
final class LineBuffer {
    /** Receives each complete line (without its terminator); returns false to stop reading. */
    interface Sink {
        boolean line(byte[] bytes, int offset, int length);
    }

    /** What {@link #feed} ended with. */
    enum Result { MORE, STOPPED, OVERSIZED }

    private final int maxLine;
    private byte[] buffer = new byte[4096];
    private int length;

    LineBuffer(int maxLine) {
        this.maxLine = maxLine;
    }

    /** Bytes of an unfinished line held now. */
    int pending() {
        return length;
    }

    /**
     * Adds {@code chunk[offset, offset + count)} and hands every line it completes to {@code sink}.
     *
     * @return {@link Result#OVERSIZED} as soon as the current line exceeds the limit (the rest is not looked at),
     *         {@link Result#STOPPED} if the sink said so, otherwise {@link Result#MORE}
     */
    Result feed(byte[] chunk, int offset, int count, Sink sink) {
        int at = offset;
        int end = offset + count;
        while (at < end) {
            int newline = -1;
            for (int i = at; i < end; i++) {
                if (chunk[i] == '\n') {
                    newline = i;
                    break;
                }
            }
            int take = (newline < 0 ? end : newline) - at;
            if ((long) length + take > maxLine + 1L) { // + 1: the CR of a CRLF line of exactly the limit
                return Result.OVERSIZED;
            }
            append(chunk, at, take);
            if (newline < 0) {
                return Result.MORE;
            }
            at = newline + 1;
            int line = length > 0 && buffer[length - 1] == '\r' ? length - 1 : length;
            length = 0;
            if (line > maxLine) {
                return Result.OVERSIZED;
            }
            if (!sink.line(buffer, 0, line)) {
                return Result.STOPPED;
            }
        }
        return Result.MORE;
    }

    private void append(byte[] chunk, int offset, int count) {
        if (length + count > buffer.length) {
            buffer = Arrays.copyOf(buffer, (int) Math.min(Math.max((long) buffer.length * 2, length + count),
                    maxLine + 1L));
        }
        System.arraycopy(chunk, offset, buffer, length, count);
        length += count;
    }
}
