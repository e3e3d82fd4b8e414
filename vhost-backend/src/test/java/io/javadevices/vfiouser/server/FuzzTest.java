package io.javadevices.vfiouser.server;

import io.javadevices.vfiouser.client.TestClient;
import io.javadevices.vfiouser.client.TestClient.EventFd;
import io.javadevices.vfiouser.client.TestClient.Memfd;
import io.javadevices.vfiouser.client.TestClient.Reply;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Random;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Proves that no sequence of random and mutated vfio-user messages can break the server: a well-framed
 * command gets exactly one reply with its id (or none if NO_REPLY / reply-typed); a badly framed one gets an
 * error reply and a disconnect; the server keeps serving, and the session's resources are released at the end.
 *
 * <p>Fixed seed and 10 000 messages by default; long mode: {@code -Dfuzz.iterations=100000 -Dfuzz.seed=123}
 * (surefire passes both through). The test prints how many cases ran and the outcome classes it saw.
 */
class FuzzTest {
    private static final long SEED = Long.decode(property("fuzz.seed", "0x5EEDF00D"));
    private static final int MESSAGES = Integer.parseInt(property("fuzz.iterations", "10000"));

    /** A system property, or the default if it is unset or blank (an unset Maven property arrives as blank). */
    static String property(String key, String fallback) {
        String v = System.getProperty(key);
        return v == null || v.isBlank() || v.startsWith("${") ? fallback : v.trim();
    }

    @TempDir
    Path dir;

    @Test
    void randomAndMutatedMessages() throws Exception {
        Random random = new Random(SEED);
        long started = System.nanoTime();
        int replies = 0, silent = 0, disconnects = 0, errorReplies = 0;
        java.util.Map<Integer, Integer> errnos = new java.util.TreeMap<>();
        try (VfioUserServer server = Fixture.start(dir, Limits.defaults().withMaxDmaMaps(256));
             Memfd ram = new Memfd(64 << 10); EventFd efd = new EventFd()) {
            TestClient c = Fixture.client(server).timeout(5000);
            int id = 1;
            for (int i = 0; i < MESSAGES; i++) {
                id = (id + 1) & 0xFFFF;
                if (random.nextInt(100) < 3) {
                    // Broken framing: the server replies with an error (if it can) and disconnects.
                    brokenFraming(c, random, id);
                    c.close();
                    disconnects++;
                    Fixture.idle(server);
                    c = Fixture.client(server).timeout(5000);
                    continue;
                }
                int command = random.nextInt(100) < 90 ? 1 + random.nextInt(15) : random.nextInt(0x10000);
                byte[] payload = mutate(random, template(random, command));
                int flags = switch (random.nextInt(20)) {
                    case 0 -> FLAG_NO_REPLY;
                    case 1 -> FLAG_TYPE_REPLY;
                    case 2 -> random.nextInt();
                    default -> 0;
                };
                int[] fds = switch (random.nextInt(40)) {
                    case 0 -> new int[] {efd.fd};
                    case 1 -> new int[] {ram.fd};
                    case 2 -> new int[] {efd.fd, efd.fd, ram.fd};
                    default -> new int[0];
                };
                c.sendRaw(TestClient.message(id, command, flags, payload), fds);
                boolean expectReply = (flags & FLAG_TYPE_MASK) != FLAG_TYPE_REPLY && (flags & FLAG_NO_REPLY) == 0;
                int pingId = (id + 1) & 0xFFFF;
                id = pingId;
                c.sendRaw(TestClient.message(pingId, CMD_DEVICE_GET_INFO, 0, TestClient.le(16).putInt(16).array()));
                Reply first = c.readReply();
                if (expectReply) {
                    assertEquals(pingId - 1 & 0xFFFF, first.id(), "message " + i + " (command " + command + ")");
                    assertTrue(first.isReply());
                    assertEquals(command, first.command());
                    if (first.isError()) {
                        assertEquals(0, first.body().capacity(), "error replies are header-only");
                        assertTrue(first.error() > 0);
                        errorReplies++;
                        errnos.merge(first.error(), 1, Integer::sum);
                    }
                    replies++;
                    first = c.readReply();
                } else {
                    silent++;
                }
                assertEquals(pingId, first.id(), "ping after message " + i);
                assertFalse(first.isError(), "ping after message " + i);
            }
            c.close();
            Fixture.idle(server);
            assertEquals(0L, server.resources().get("dma.maps"));
            assertEquals(0L, server.resources().get("irq.fds"));
            assertTrue(server.isServing());
            Fixture.assertServes(server);
        }
        System.out.printf("[fuzz] vhost-backend: %d messages (seed %#x) in %.1f s: %d replies (%d ok, %d errors by errno %s),"
                        + " %d unanswered (NO_REPLY / reply-typed), %d broken framings -> disconnects%n",
                MESSAGES, SEED, (System.nanoTime() - started) / 1e9, replies, replies - errorReplies, errorReplies, errnos,
                silent, disconnects);
        assertTrue(replies > MESSAGES / 2, "replies " + replies);
        // Scaled to the run length: with the default 10 000 messages, > 100 silent and > 50 disconnects.
        assertTrue(silent > MESSAGES / 100 && disconnects > MESSAGES / 200, silent + " silent, " + disconnects + " disconnects");
    }

    private static void brokenFraming(TestClient c, Random random, int id) throws Exception {
        int kind = random.nextInt(3);
        long size = switch (kind) {
            case 0 -> random.nextInt(16);
            case 1 -> Limits.defaults().maxMessageBytes() + 1L + random.nextInt(Integer.MAX_VALUE);
            default -> 16 + 8 + random.nextInt(64);
        };
        byte[] header = TestClient.le(16).putShort((short) id).putShort((short) (1 + random.nextInt(15)))
                .putInt((int) size).putInt(0).putInt(0).array();
        if (kind == 2) {
            c.sendRaw(header); // then fewer body bytes than announced, and EOF
            c.sendRaw(new byte[random.nextInt(8)]);
            return;
        }
        c.sendRaw(header);
        Reply r = c.readReply();
        assertEquals(id, r.id());
        assertTrue(r.isError());
        assertEquals(kind == 0 ? 22 : 7, r.error());
        assertTrue(c.closedByServer(5000));
    }

    /** A valid-looking payload for a command, with random but plausible fields. */
    private static byte[] template(Random r, int command) {
        return switch (command) {
            case CMD_VERSION -> {
                byte[] json = TestClient.QEMU_CAPS.getBytes(StandardCharsets.UTF_8);
                ByteBuffer b = TestClient.le(4 + json.length + 1);
                yield b.putShort((short) 0).putShort((short) 0).put(json).put((byte) 0).array();
            }
            case CMD_DMA_MAP -> TestClient.dmaMapPayload(pageish(r), 4096L * (1 + r.nextInt(16)), 0, 1 + r.nextInt(3));
            case CMD_DMA_UNMAP -> TestClient.le(24).putInt(24).putInt(r.nextInt(4) == 0 ? 2 : 0)
                    .putLong(pageish(r)).putLong(4096L * (1 + r.nextInt(16))).array();
            case CMD_DEVICE_GET_INFO -> TestClient.le(16).putInt(16).array();
            case CMD_DEVICE_GET_REGION_INFO -> TestClient.le(32).putInt(32).putInt(0).putInt(r.nextInt(10)).array();
            case CMD_DEVICE_GET_IRQ_INFO -> TestClient.le(16).putInt(16).putInt(0).putInt(r.nextInt(6)).array();
            case CMD_DEVICE_SET_IRQS -> TestClient.le(20).putInt(20)
                    .putInt((1 << r.nextInt(3)) | (8 << r.nextInt(3))).putInt(r.nextInt(5))
                    .putInt(r.nextInt(3)).putInt(r.nextInt(3)).array();
            case CMD_REGION_READ -> TestClient.rwPayload(region(r), r.nextInt(4200), 1 << r.nextInt(5), null);
            case CMD_REGION_WRITE -> {
                int count = 1 << r.nextInt(5);
                byte[] data = new byte[count];
                r.nextBytes(data);
                yield TestClient.rwPayload(region(r), r.nextInt(4200), count, data);
            }
            case CMD_REGION_WRITE_MULTI -> {
                int n = r.nextInt(4);
                ByteBuffer b = TestClient.le(8 + 24 * n).putLong(n);
                for (int i = 0; i < n; i++) {
                    b.putLong(r.nextInt(64)).putInt(0).putInt(4).putLong(r.nextLong());
                }
                yield b.array();
            }
            case CMD_DEVICE_RESET -> new byte[0];
            default -> {
                byte[] junk = new byte[r.nextInt(64)];
                r.nextBytes(junk);
                yield junk;
            }
        };
    }

    private static int region(Random r) {
        int x = r.nextInt(10);
        return x < 4 ? 0 : x < 7 ? REGION_CONFIG : x;
    }

    private static long pageish(Random r) {
        return r.nextInt(4) == 0 ? r.nextLong() : 4096L * r.nextInt(1 << 16);
    }

    /** Flips bytes, truncates or extends, or leaves the payload alone. */
    private static byte[] mutate(Random r, byte[] payload) {
        int kind = r.nextInt(10);
        if (kind < 4 || payload.length == 0 && kind < 8) {
            return payload;
        }
        if (kind < 7) {
            byte[] p = payload.clone();
            for (int i = 0, n = 1 + r.nextInt(4); i < n; i++) {
                p[r.nextInt(p.length)] = (byte) r.nextInt(256);
            }
            return p;
        }
        if (kind < 9) {
            return java.util.Arrays.copyOf(payload, r.nextInt(payload.length + 33));
        }
        byte[] junk = new byte[r.nextInt(300)];
        r.nextBytes(junk);
        return junk;
    }
}
