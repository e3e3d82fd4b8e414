/**
 * The NBD client backend: a namespace on an export of {@code qemu-nbd}, {@code qemu-storage-daemon} or
 * {@code nbdkit} (the nbd project's {@code doc/proto.md}; URIs as its {@code doc/uri.md}).
 *
 * <ul>
 *   <li>{@link io.javadevices.nvme.nbd.NbdUri}: {@code nbd://HOST[:PORT]/EXPORT}, {@code nbd+unix:///EXPORT?socket=PATH}.</li>
 *   <li>{@code NbdHandshake}: fixed newstyle, NBD_OPT_GO (NBD_OPT_EXPORT_NAME on old servers), simple replies only.</li>
 *   <li>{@code NbdConnection}: one session and its reader thread; {@code NbdSender}: the lock-free submission
 *       stack and the send role (the submitting worker sends, a writer thread only when the socket is full),
 *       {@code NbdOutbox} its queue; {@code NbdSocket}/{@code SocketCalls}: the socket on a raw descriptor through
 *       the FFM API (gathering sends straight from guest memory).</li>
 *   <li>{@code NbdAsync}/{@code NbdRequest}: a queue worker's requests, one reusable slot per tag; cookies are
 *       (worker, tag, generation, piece).</li>
 *   <li>{@link io.javadevices.nvme.nbd.NbdBackend}: the namespace's {@code BlockBackend}, its synchronous calls,
 *       reconnection with back-off and the request timeout.</li>
 * </ul>
 *
 * <p>Depends on {@code io.javadevices.nvme.backend} only; nothing there depends on this package.
 */
package io.javadevices.nvme.nbd;
