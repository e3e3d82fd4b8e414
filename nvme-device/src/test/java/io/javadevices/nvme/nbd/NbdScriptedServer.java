package io.javadevices.nvme.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import static io.javadevices.nvme.nbd.NbdProtocol.*;

/**
 * An NBD server on a Unix socket whose every byte follows a fuzzed {@link Script}: a handshake that is mostly
 * valid (NBD_OPT_GO answered with information blocks of chosen types and lengths, error replies, the
 * NBD_OPT_EXPORT_NAME fallback), then transmission actions (replies with right or wrong magics, cookies, errors
 * and payload lengths, garbage, an early close) and a tail (answer everything well, close, or never answer).
 * Later connections (the client's reconnections) get a valid handshake of the same or another size.
 *
 * <p>It also checks the client: every request must be one the negotiation allows (a known command within the
 * export, within the maximum block size, flush/trim/write zeroes/FUA only where advertised, nothing written to a
 * read-only export) and a write's payload must be the bytes the test wrote ({@link #written}) or all zeroes.
 * Violations are collected. Served data is {@link #disk}; the replies sent while the stream was still
 * well-formed are remembered, so the test can check that a read completed from them holds exactly that data.
 */
final class NbdScriptedServer implements AutoCloseable {
    static final int STRUCTURED_REPLY_MAGIC = 0x668e33ef;
    private static final long[] SIZES = {64 << 10, 1 << 20, 512, 0, 1000, 1L << 62};
    private static final int[] MIN_BLOCKS = {1, 512, 4096, 3, 0, 1 << 17};
    private static final int[] MAX_BLOCKS = {4096, 0, 8192, 1000, -1, 4097};
    private static final int DEFAULT_FLAGS = TF_HAS_FLAGS | TF_SEND_FLUSH | TF_SEND_FUA | TF_SEND_TRIM
            | TF_SEND_WRITE_ZEROES;
    private static final int[] ERRORS = {0, EIO, EPERM, ENOSPC, ESHUTDOWN, EINVAL, EOVERFLOW, EOPNOTSUPP, ENOMEM,
            12345, -1};
    private static final int[] ERROR_REPLIES = {REP_ERR_UNKNOWN, REP_ERR_POLICY, REP_ERR_TLS_REQD,
            REP_ERR_INVALID, REP_ERR_SHUTDOWN, REP_ERR_TOO_BIG, REP_FLAG_ERROR | 0x7777};

    /** A served byte at disk offset {@code o}: always 0x80 or more, so no payload ever looks like a reply magic. */
    static byte disk(long o) {
        return (byte) (0x80 | ((o * 31 + 7) & 0x7F));
    }

    /** What the test writes at disk offset {@code o} (never zero, never a guard byte). */
    static byte written(long o) {
        return (byte) (0x80 | ((o * 17 + 3) & 0x7F));
    }

    // ------------------------------------------------------------------ the script

    /** One reply of the server to NBD_OPT_GO. */
    record GoItem(int kind, int lengthVariant, int lengthDelta, int value) {
        static final int INFO_EXPORT = 0, INFO_BLOCK = 1, INFO_OTHER = 2, INFO_EMPTY = 3, UNSUP = 4, ERROR = 5,
                UNEXPECTED = 6, WRONG_OPTION = 7, BAD_MAGIC = 8, HUGE = 9, CLOSE = 10, ACK = 11;
    }

    record Handshake(int greet, int serverFlags, List<GoItem> go, int exportNameReply, long size, int flags,
                     int minBlock, int maxBlock) {
        static final int GREET_OK = 0, BAD_MAGIC = 1, OLDSTYLE = 2, BAD_STYLE = 3, CLOSE_FIRST = 4,
                CLOSE_AFTER = 5, PARTIAL = 6;

        boolean fixed() {
            return serverFlags == 0 || serverFlags == 1;
        }

        boolean noZeroes() {
            return serverFlags == 0 || serverFlags == 2;
        }

        /** The transmission flags as the client sees them (meaningless without NBD_FLAG_HAS_FLAGS). */
        int effectiveFlags() {
            return (flags & TF_HAS_FLAGS) != 0 ? flags & 0xFFFF : 0;
        }

        static Handshake decode(NbdFuzzChoices c) {
            int greet = c.range("greet", 0, 6);
            int serverFlags = c.range("serverFlags", 0, 3);
            long size = SIZES[c.range("size", 0, SIZES.length - 1)];
            int flags = DEFAULT_FLAGS ^ c.range("flagsFlip", 0, 0x1FF);
            int minBlock = MIN_BLOCKS[c.range("minBlock", 0, MIN_BLOCKS.length - 1)];
            int maxBlock = MAX_BLOCKS[c.range("maxBlock", 0, MAX_BLOCKS.length - 1)];
            List<GoItem> go = new ArrayList<>();
            int items = c.range("goItems", 2, 6); // default: INFO_EXPORT, INFO_BLOCK_SIZE, then the ACK
            for (int i = 0; i < items; i++) {
                int kind = c.range("goItem", 0, 11);
                go.add(new GoItem(i == 1 && kind == 0 ? GoItem.INFO_BLOCK : kind, c.range("infoLength", 0, 2),
                        c.range("infoDelta", 1, 12), c.range("goValue", 0, 15)));
            }
            int exportNameReply = c.range("exportNameReply", 0, 2);
            return new Handshake(greet, serverFlags, go, exportNameReply, size, flags, minBlock, maxBlock);
        }

        static Handshake valid(long size) {
            return new Handshake(GREET_OK, 0, List.of(new GoItem(GoItem.INFO_EXPORT, 0, 1, 0),
                    new GoItem(GoItem.INFO_BLOCK, 0, 1, 0)), 0, size, DEFAULT_FLAGS, 1, 4096);
        }
    }

    /** A transmission step. */
    record Action(int kind, int pick, int magic, int cookie, int error, int payload, int count) {
        static final int REPLY = 0, REPLY_ALL = 1, GARBAGE = 2, CLOSE = 3, PAUSE = 4, DUPLICATE = 5, REVERSED = 6;
        static final int PAYLOAD_EXACT = 0, PAYLOAD_SHORT = 1, PAYLOAD_SHORT_CLOSE = 2, PAYLOAD_LONG = 3,
                PAYLOAD_ALWAYS = 4;

        static Action decode(NbdFuzzChoices c) {
            return new Action(c.range("act", 0, 6), c.range("pick", 0, 7), c.range("magic", 0, 2),
                    c.range("cookie", 0, 4), c.range("error", 0, ERRORS.length - 1), c.range("payload", 0, 4),
                    c.range("count", 1, 64));
        }
    }

    /**
     * @param tail  after the actions: 0 answer everything well, 1 close, 2 never answer (the client times out)
     * @param later the client's reconnections: 0 the same export, 1 another size (refused), 2 closed at once
     */
    record Script(Handshake first, List<Action> actions, int tail, int later) {
        static final int TAIL_GOOD = 0, TAIL_CLOSE = 1, TAIL_STALL = 2;

        static Script decode(NbdFuzzChoices c) {
            Handshake first = Handshake.decode(c);
            List<Action> actions = new ArrayList<>();
            int n = c.range("actions", 0, 12);
            for (int i = 0; i < n; i++) {
                actions.add(Action.decode(c));
            }
            return new Script(first, actions, c.range("tail", 0, 2), c.range("later", 0, 2));
        }
    }

    /** A request the server has read and not answered yet. */
    private record Pending(long cookie, int command, int flags, long offset, int length) {
    }

    // ------------------------------------------------------------------ the server

    private final Script script;
    private final ServerSocketChannel server;
    private final Thread acceptor;
    private final List<Thread> threads = new CopyOnWriteArrayList<>();
    private final List<SocketChannel> clients = new CopyOnWriteArrayList<>();
    private final List<String> violations = new CopyOnWriteArrayList<>();
    /** Cookies of read pieces answered with their exact data while every byte sent before was well-formed. */
    private final Set<Long> cleanReads = ConcurrentHashMap.newKeySet();
    /** False once some connection sent a malformed byte: the client's view of its stream may differ from ours. */
    private volatile boolean allClean = true;
    private volatile boolean clientDone;
    private volatile boolean closed;
    private int connections;

    NbdScriptedServer(Path socket, Script script) throws IOException {
        Files.deleteIfExists(socket);
        this.script = script;
        this.server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(socket));
        this.acceptor = Thread.ofPlatform().daemon().name("nbd-fuzz-server").start(this::acceptLoop);
    }

    List<String> violations() {
        return violations;
    }

    boolean cleanRead(long cookie) {
        return cleanReads.contains(cookie);
    }

    boolean allClean() {
        return allClean;
    }

    /** The client sent all it will send: stop waiting for requests. */
    void clientDone() {
        clientDone = true;
    }

    private void acceptLoop() {
        while (!closed) {
            SocketChannel client;
            try {
                client = server.accept();
            } catch (IOException e) {
                return;
            }
            clients.add(client);
            int n = connections++;
            Handshake handshake = n == 0 ? script.first() : Handshake.valid(script.first().size()
                    * (script.later() == 1 ? 2 : 1));
            boolean refuse = n > 0 && script.later() == 2;
            Thread t = Thread.ofPlatform().daemon().name("nbd-fuzz-session").unstarted(() -> {
                try (client) {
                    if (!refuse) {
                        new Session(client, handshake, n == 0 ? script.actions() : List.of(),
                                n == 0 ? script.tail() : Script.TAIL_GOOD).run();
                    }
                } catch (IOException | InterruptedException e) {
                    // the client went away or the server is closing
                }
            });
            threads.add(t);
            t.start();
        }
    }

    /** One connection. */
    private final class Session {
        private final SocketChannel client;
        private final Handshake hs;
        private final List<Action> actions;
        private final int tail;
        private final LinkedBlockingQueue<Pending> arrived = new LinkedBlockingQueue<>();
        private final List<Pending> pending = new ArrayList<>();
        private volatile boolean readerEnded;
        private boolean clean = true;
        /** The maximum block size the client was told (NBD_INFO_BLOCK_SIZE); none: the portable 32 MiB. */
        private volatile long advertisedMax = DEFAULT_MAX_PAYLOAD;

        Session(SocketChannel client, Handshake hs, List<Action> actions, int tail) {
            this.client = client;
            this.hs = hs;
            this.actions = actions;
            this.tail = tail;
        }

        void run() throws IOException, InterruptedException {
            if (!handshake()) {
                return;
            }
            Thread reader = Thread.ofPlatform().daemon().name("nbd-fuzz-requests").start(this::readRequests);
            threads.add(reader);
            for (Action action : actions) {
                if (!act(action)) {
                    return;
                }
            }
            switch (tail) {
                case Script.TAIL_GOOD -> {
                    for (Pending p : pending) { // gathered by the actions but not answered (or answered twice)
                        if (!answered.contains(p.cookie())
                                && !reply(p, SIMPLE_REPLY_MAGIC, p.cookie(), 0, Action.PAYLOAD_EXACT)) {
                            return;
                        }
                    }
                    pending.clear();
                    while (!closed && !(readerEnded && arrived.isEmpty())) {
                        Pending p = arrived.poll(5, TimeUnit.MILLISECONDS);
                        if (p != null) {
                            reply(p, SIMPLE_REPLY_MAGIC, p.cookie(), 0, Action.PAYLOAD_EXACT);
                        }
                    }
                }
                case Script.TAIL_STALL -> {
                    while (!closed && !readerEnded) {
                        Thread.sleep(2);
                    }
                }
                default -> { } // close
            }
        }

        // -------------------------------------------------------------- handshake

        /** True if the transmission phase begins. */
        private boolean handshake() throws IOException {
            ByteBuffer hello = ByteBuffer.allocate(18);
            hello.putLong(hs.greet() == Handshake.BAD_MAGIC ? 0x4e42444d41474944L : NBDMAGIC);
            hello.putLong(hs.greet() == Handshake.OLDSTYLE ? OLDSTYLE_MAGIC
                    : hs.greet() == Handshake.BAD_STYLE ? 0x1234L : IHAVEOPT);
            int flags = hs.serverFlags() == 0 ? 3 : hs.serverFlags() == 1 ? 1 : hs.serverFlags() == 2 ? 2 : 0;
            hello.putShort((short) flags);
            switch (hs.greet()) {
                case Handshake.CLOSE_FIRST -> {
                    return false;
                }
                case Handshake.PARTIAL -> {
                    write(hello.flip().limit(7));
                    return false;
                }
                default -> write(hello.flip());
            }
            if (hs.greet() == Handshake.CLOSE_AFTER) {
                return false;
            }
            int clientFlags = read(4).getInt();
            if ((clientFlags & ~flags) != 0) {
                violations.add("client flags 0x" + Integer.toHexString(clientFlags) + " beyond the server's " + flags);
            }
            while (true) {
                ByteBuffer header = read(16);
                if (header.getLong() != IHAVEOPT) {
                    violations.add("option without IHAVEOPT");
                    return false;
                }
                int option = header.getInt();
                int length = header.getInt();
                if (length < 0 || length > 4096 + 16) {
                    violations.add("option of " + length + " bytes");
                    return false;
                }
                ByteBuffer data = read(length);
                if (option == OPT_EXPORT_NAME) {
                    return exportName();
                }
                if (option != OPT_GO) {
                    violations.add("unexpected option " + option);
                    return false;
                }
                if (!(hs.fixed())) {
                    violations.add("NBD_OPT_GO to a server without fixed newstyle");
                }
                if (data.remaining() < 4 || data.getInt(0) != data.remaining() - 4 - 2 - 2 * 2) {
                    violations.add("malformed NBD_OPT_GO of " + length + " bytes");
                }
                Boolean go = answerGo();
                if (go != null) {
                    return go;
                }
                // NBD_REP_ERR_UNSUP: the client must now send NBD_OPT_EXPORT_NAME
            }
        }

        /** The scripted answers to NBD_OPT_GO: TRUE transmission, FALSE closed, null "unsupported". */
        private Boolean answerGo() throws IOException {
            long max = DEFAULT_MAX_PAYLOAD; // what NBD_INFO_BLOCK_SIZE told, binding only once NBD_REP_ACK ends the GO
            for (GoItem item : hs.go()) {
                switch (item.kind()) {
                    case GoItem.INFO_EXPORT -> info(item, 12, ByteBuffer.allocate(12).putShort((short) INFO_EXPORT)
                            .putLong(hs.size()).putShort((short) hs.flags()));
                    case GoItem.INFO_BLOCK -> {
                        if (item.lengthVariant() == 0 && hs.maxBlock() != 0) {
                            max = Integer.toUnsignedLong(hs.maxBlock());
                        }
                        info(item, 14, ByteBuffer.allocate(14).putShort((short) INFO_BLOCK_SIZE)
                            .putInt(hs.minBlock()).putInt(4096).putInt(hs.maxBlock()));
                    }
                    case GoItem.INFO_OTHER -> info(item, 2 + item.value(),
                            ByteBuffer.allocate(2 + item.value()).putShort((short) (1 + item.value())));
                    case GoItem.INFO_EMPTY -> optionReply(OPT_GO, REP_INFO, new byte[item.value() & 1]);
                    case GoItem.UNSUP -> {
                        optionReply(OPT_GO, REP_ERR_UNSUP, new byte[0]);
                        return null;
                    }
                    case GoItem.ERROR -> {
                        optionReply(OPT_GO, ERROR_REPLIES[item.value() % ERROR_REPLIES.length],
                                "no\u00ff\u0000such export".substring(0, item.lengthDelta())
                                        .getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
                        return false;
                    }
                    case GoItem.UNEXPECTED -> optionReply(OPT_GO, 2 + item.value(), new byte[item.lengthDelta()]);
                    case GoItem.WRONG_OPTION -> optionReply(OPT_EXPORT_NAME + item.value(), REP_ACK, new byte[0]);
                    case GoItem.BAD_MAGIC -> write(ByteBuffer.allocate(20).putLong(0x0003e889045565aaL)
                            .putInt(OPT_GO).putInt(REP_ACK).putInt(0).flip());
                    case GoItem.HUGE -> {
                        write(ByteBuffer.allocate(20).putLong(OPTION_REPLY_MAGIC).putInt(OPT_GO)
                                .putInt(REP_INFO).putInt(item.value() == 0 ? -1 : (64 << 10) + item.value()).flip());
                        return false;
                    }
                    case GoItem.CLOSE -> {
                        return false;
                    }
                    default -> { // an early ACK
                        optionReply(OPT_GO, REP_ACK, new byte[0]);
                        advertisedMax = max;
                        return true;
                    }
                }
            }
            optionReply(OPT_GO, REP_ACK, new byte[0]);
            advertisedMax = max;
            return true;
        }

        /** An NBD_REP_INFO of {@code exact} bytes, or (lengthVariant 1/2) shorter or longer. */
        private void info(GoItem item, int exact, ByteBuffer body) throws IOException {
            int length = switch (item.lengthVariant()) {
                case 1 -> Math.max(0, exact - item.lengthDelta());
                case 2 -> exact + item.lengthDelta();
                default -> exact;
            };
            byte[] data = new byte[length];
            System.arraycopy(body.array(), 0, data, 0, Math.min(length, exact));
            optionReply(OPT_GO, REP_INFO, data);
        }

        private boolean exportName() throws IOException {
            if (hs.exportNameReply() == 1) {
                return false; // "no such export": the server closes
            }
            ByteBuffer reply = ByteBuffer.allocate(hs.noZeroes() ? 10 : 134);
            reply.putLong(hs.size()).putShort((short) hs.flags()).position(reply.capacity()).flip();
            if (hs.exportNameReply() == 2) {
                write(reply.limit(6));
                return false;
            }
            write(reply);
            return true;
        }

        private void optionReply(int option, int type, byte[] data) throws IOException {
            write(ByteBuffer.allocate(20 + data.length).putLong(OPTION_REPLY_MAGIC).putInt(option).putInt(type)
                    .putInt(data.length).put(data).flip());
        }

        // -------------------------------------------------------------- transmission

        /** The request reader: parses and checks every request, queues it for the actions. */
        private void readRequests() {
            int flags = hs.effectiveFlags();
            long maxLength = advertisedMax;
            try {
                while (true) {
                    ByteBuffer r = read(28);
                    int magic = r.getInt();
                    int commandFlags = r.getShort() & 0xFFFF;
                    int command = r.getShort() & 0xFFFF;
                    long cookie = r.getLong();
                    long offset = r.getLong();
                    int length = r.getInt();
                    check(magic == REQUEST_MAGIC, "request magic 0x" + Integer.toHexString(magic));
                    check(command == CMD_READ || command == CMD_WRITE || command == CMD_FLUSH || command == CMD_TRIM
                            || command == CMD_WRITE_ZEROES, "command " + command);
                    long end = offset + Integer.toUnsignedLong(length);
                    check(offset >= 0 && end <= hs.size(), "request beyond the export: " + offset + "+" + length);
                    boolean payloadCommand = command == CMD_READ || command == CMD_WRITE;
                    check(!payloadCommand || Integer.toUnsignedLong(length) <= maxLength,
                            "a " + length + "-byte payload beyond the block size " + maxLength);
                    check(command != CMD_FLUSH || (flags & TF_SEND_FLUSH) != 0, "flush not advertised");
                    check(command != CMD_TRIM || (flags & TF_SEND_TRIM) != 0, "trim not advertised");
                    check(command != CMD_WRITE_ZEROES || (flags & TF_SEND_WRITE_ZEROES) != 0,
                            "write zeroes not advertised");
                    check((commandFlags & CMD_FLAG_FUA) == 0 || (flags & TF_SEND_FUA) != 0, "FUA not advertised");
                    check((commandFlags & CMD_FLAG_NO_HOLE) == 0 || command == CMD_WRITE_ZEROES, "NO_HOLE on " + command);
                    check((commandFlags & ~(CMD_FLAG_FUA | CMD_FLAG_NO_HOLE)) == 0, "flags 0x"
                            + Integer.toHexString(commandFlags));
                    check(command == CMD_READ || command == CMD_FLUSH || (flags & TF_READ_ONLY) == 0,
                            "command " + command + " to a read-only export");
                    if (command == CMD_WRITE) {
                        checkPayload(read(length), offset);
                    }
                    arrived.add(new Pending(cookie, command, commandFlags, offset, length));
                }
            } catch (IOException | RuntimeException e) {
                // the connection ended
            } finally {
                readerEnded = true;
            }
        }

        private void check(boolean ok, String what) {
            if (!ok) {
                violations.add(what);
            }
        }

        private void checkPayload(ByteBuffer payload, long offset) {
            boolean zeroes = true, pattern = true;
            for (int i = 0; i < payload.limit(); i++) {
                byte b = payload.get(i);
                zeroes &= b == 0;
                pattern &= b == written(offset + i);
            }
            check(zeroes || pattern, "write payload at " + offset + " is neither the test's data nor zeroes");
        }

        /** Moves what has arrived to {@link #pending}; waits a little for a first request if there is none. */
        private void gather(boolean wait) throws InterruptedException {
            arrived.drainTo(pending);
            long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(50);
            while (wait && pending.isEmpty() && !clientDone && !readerEnded && !closed && System.nanoTime() < end) {
                Pending p = arrived.poll(1, TimeUnit.MILLISECONDS);
                if (p != null) {
                    pending.add(p);
                    arrived.drainTo(pending);
                }
            }
        }

        /** False once the connection is closed. */
        private boolean act(Action a) throws IOException, InterruptedException {
            switch (a.kind()) {
                case Action.REPLY, Action.DUPLICATE -> {
                    gather(true);
                    if (pending.isEmpty()) {
                        return true;
                    }
                    Pending p = a.kind() == Action.DUPLICATE ? pending.get(a.pick() % pending.size())
                            : pending.remove(a.pick() % pending.size());
                    int magic = switch (a.magic()) {
                        case 1 -> STRUCTURED_REPLY_MAGIC;
                        case 2 -> SIMPLE_REPLY_MAGIC ^ (1 << (a.count() % 32));
                        default -> SIMPLE_REPLY_MAGIC;
                    };
                    long cookie = switch (a.cookie()) {
                        case 1 -> p.cookie() ^ (1L << (16 + a.count() % 16)); // another generation
                        case 2 -> p.cookie() ^ (1L << (a.count() % 16));       // another piece
                        case 3 -> p.cookie() ^ (1L << (32 + a.count() % 32));  // another tag or worker
                        case 4 -> a.count() * 0x9E3779B97F4A7C15L;
                        default -> p.cookie();
                    };
                    return reply(p, magic, cookie, ERRORS[a.error()], a.payload());
                }
                case Action.REPLY_ALL, Action.REVERSED -> {
                    gather(true);
                    List<Pending> all = new ArrayList<>(pending);
                    pending.clear();
                    if (a.kind() == Action.REVERSED) {
                        java.util.Collections.reverse(all);
                    }
                    for (Pending p : all) {
                        if (!reply(p, SIMPLE_REPLY_MAGIC, p.cookie(), 0, Action.PAYLOAD_EXACT)) {
                            return false;
                        }
                    }
                    return true;
                }
                case Action.GARBAGE -> {
                    byte[] junk = new byte[a.count()];
                    for (int i = 0; i < junk.length; i++) {
                        junk[i] = (byte) (a.pick() * 37 + i * 101);
                    }
                    unclean();
                    write(ByteBuffer.wrap(junk));
                    return true;
                }
                case Action.CLOSE -> {
                    return false;
                }
                default -> { // a pause, so requests and replies interleave differently
                    Thread.sleep(0, 1000 * a.count());
                    return true;
                }
            }
        }

        /**
         * One simple reply to {@code p}; a read's payload per {@code payloadVariant}. Whether the bytes are still
         * a well-formed stream is tracked for the data check. False once the connection is closed.
         */
        private boolean reply(Pending p, int magic, long cookie, int error, int payloadVariant) throws IOException {
            boolean read = p.command() == CMD_READ;
            int length = p.length();
            int n = switch (payloadVariant) {
                case Action.PAYLOAD_SHORT, Action.PAYLOAD_SHORT_CLOSE -> length / 2;
                case Action.PAYLOAD_LONG -> length + 1 + (int) (cookie & 63);
                case Action.PAYLOAD_ALWAYS -> Math.max(length, 16);
                default -> read && error == 0 ? length : 0;
            };
            if (payloadVariant == Action.PAYLOAD_ALWAYS && read && error == 0) {
                n = length;
            }
            boolean wellFormed = magic == SIMPLE_REPLY_MAGIC && cookie == p.cookie()
                    && n == (read && error == 0 ? length : 0);
            // A second answer to one cookie is malformed too: the client must drop the connection at it.
            boolean duplicate = !pendingOnce(p);
            if (!wellFormed || duplicate) {
                unclean();
            } else if (read && clean) {
                cleanReads.add(cookie);
            }
            ByteBuffer b = ByteBuffer.allocate(16 + n).putInt(magic).putInt(error).putLong(cookie);
            for (int i = 0; i < n; i++) {
                b.put(disk(p.offset() + i));
            }
            write(b.flip());
            return payloadVariant != Action.PAYLOAD_SHORT_CLOSE;
        }

        private final Set<Long> answered = new java.util.HashSet<>();

        /** True the first time {@code p} is answered. */
        private boolean pendingOnce(Pending p) {
            return answered.add(p.cookie());
        }

        private void unclean() {
            clean = false;
            allClean = false;
        }

        private ByteBuffer read(int n) throws IOException {
            ByteBuffer b = ByteBuffer.allocate(n);
            while (b.hasRemaining()) {
                if (client.read(b) < 0) {
                    throw new EOFException();
                }
            }
            return b.flip();
        }

        private void write(ByteBuffer b) throws IOException {
            while (b.hasRemaining()) {
                client.write(b);
            }
        }
    }

    /** Closes the socket and every connection; true if all the server's threads ended. */
    boolean stop() throws InterruptedException {
        closed = true;
        try {
            server.close();
        } catch (IOException ignored) {
            // closing
        }
        acceptor.join(2000);
        for (SocketChannel c : clients) {
            try {
                c.close();
            } catch (IOException ignored) {
                // closing
            }
        }
        boolean ended = !acceptor.isAlive();
        for (Thread t : threads) {
            t.join(2000);
            ended &= !t.isAlive();
        }
        return ended;
    }

    @Override
    public void close() throws InterruptedException {
        stop();
    }
}
