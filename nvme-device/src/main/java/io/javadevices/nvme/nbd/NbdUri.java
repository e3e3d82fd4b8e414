package io.javadevices.nvme.nbd;

import java.io.ByteArrayOutputStream;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * An NBD export's address in the standard NBD URI grammar (the nbd project's {@code doc/uri.md}, also what
 * QEMU's {@code nbd_parse_uri} accepts): {@code nbd://HOST[:PORT]/EXPORT} over TCP (port 10809 by default) or
 * {@code nbd+unix:///EXPORT?socket=PATH} over a Unix socket. The export name is percent-decoded and may be
 * empty (the server's default export). TLS ({@code nbds}) and vsock are refused: this client speaks neither.
 *
 * @param host   TCP host, or null for a Unix socket
 * @param port   TCP port
 * @param socket Unix socket path, or null for TCP
 * @param export the export name (decoded)
 */
public record NbdUri(String host, int port, Path socket, String export) {
    public static final int DEFAULT_PORT = 10809;

    /** True if {@code text} is meant as an NBD URI (any {@code nbd} scheme, supported or not). */
    public static boolean looksLikeNbd(String text) {
        return text.startsWith("nbd://") || text.startsWith("nbd+") || text.startsWith("nbds://")
                || text.startsWith("nbds+");
    }

    public static NbdUri parse(String uri) {
        int sep = uri.indexOf("://");
        if (sep < 0) {
            throw bad(uri, "not an NBD URI (nbd://HOST[:PORT]/EXPORT or nbd+unix:///EXPORT?socket=PATH)");
        }
        String scheme = uri.substring(0, sep);
        String rest = uri.substring(sep + 3);
        if (scheme.startsWith("nbds")) {
            throw bad(uri, "NBD over TLS (nbds) is not supported; serve the export on a Unix socket or plain TCP");
        }
        if (scheme.equals("nbd+vsock")) {
            throw bad(uri, "NBD over vsock is not supported; use nbd:// or nbd+unix://");
        }
        if (!scheme.equals("nbd") && !scheme.equals("nbd+tcp") && !scheme.equals("nbd+unix")) {
            throw bad(uri, "unknown scheme '" + scheme + "' (nbd, nbd+tcp, nbd+unix)");
        }
        String query = null;
        int q = rest.indexOf('?');
        if (q >= 0) {
            query = rest.substring(q + 1);
            rest = rest.substring(0, q);
        }
        if (rest.indexOf('#') >= 0) {
            throw bad(uri, "fragments are not allowed");
        }
        int slash = rest.indexOf('/');
        String authority = slash < 0 ? rest : rest.substring(0, slash);
        String export = slash < 0 ? "" : decode(rest.substring(slash + 1), uri);
        if (export.length() > 4096) {
            throw bad(uri, "export name longer than 4096 bytes (NBD protocol limit)");
        }
        if (scheme.equals("nbd+unix")) {
            if (!authority.isEmpty()) {
                throw bad(uri, "nbd+unix takes no host: nbd+unix:///EXPORT?socket=PATH");
            }
            String socket = null;
            for (String param : query == null ? new String[0] : query.split("&")) {
                if (param.startsWith("socket=")) {
                    socket = decode(param.substring("socket=".length()), uri);
                } else if (!param.isEmpty()) {
                    throw bad(uri, "unknown query parameter '" + param + "' (only socket=PATH)");
                }
            }
            if (socket == null || socket.isEmpty()) {
                throw bad(uri, "nbd+unix needs ?socket=PATH");
            }
            return new NbdUri(null, 0, Path.of(socket), export);
        }
        if (query != null && !query.isEmpty()) {
            throw bad(uri, "nbd:// takes no query parameters (socket= is for nbd+unix://)");
        }
        String host = authority;
        int port = DEFAULT_PORT;
        int colon = authority.lastIndexOf(':');
        if (colon >= 0 && authority.indexOf(']', colon) < 0) {
            host = authority.substring(0, colon);
            try {
                port = Integer.parseInt(authority.substring(colon + 1));
            } catch (NumberFormatException e) {
                throw bad(uri, "bad port '" + authority.substring(colon + 1) + "'");
            }
            if (port < 1 || port > 65535) {
                throw bad(uri, "port " + port + " out of range 1..65535");
            }
        }
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1); // an IPv6 literal
        }
        if (host.isEmpty()) {
            throw bad(uri, "nbd:// needs a host: nbd://HOST[:PORT]/EXPORT");
        }
        return new NbdUri(host, port, null, export);
    }

    public SocketAddress address() {
        return socket != null ? UnixDomainSocketAddress.of(socket) : new InetSocketAddress(host, port);
    }

    /** Where the server is, for messages: the socket path or host:port. */
    public String where() {
        return socket != null ? socket.toString() : host + ":" + port;
    }

    @Override
    public String toString() {
        return socket != null ? "nbd+unix:///" + export + "?socket=" + socket : "nbd://" + where() + "/" + export;
    }

    private static String decode(String text, String uri) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c == '%') {
                if (i + 2 >= text.length()) {
                    throw bad(uri, "truncated percent escape");
                }
                int hi = Character.digit(text.charAt(i + 1), 16);
                int lo = Character.digit(text.charAt(i + 2), 16);
                if (hi < 0 || lo < 0) {
                    throw bad(uri, "bad percent escape '" + text.substring(i, i + 3) + "'");
                }
                out.write(hi << 4 | lo);
                i += 2;
            } else {
                int cp = text.codePointAt(i);
                byte[] b = new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8);
                out.write(b, 0, b.length);
                i += Character.charCount(cp) - 1;
            }
        }
        String decoded = out.toString(StandardCharsets.UTF_8);
        if (decoded.indexOf('\0') >= 0) {
            throw bad(uri, "NUL in the export name or socket path");
        }
        return decoded;
    }

    private static IllegalArgumentException bad(String uri, String why) {
        return new IllegalArgumentException("NBD URI '" + uri + "': " + why);
    }
}
