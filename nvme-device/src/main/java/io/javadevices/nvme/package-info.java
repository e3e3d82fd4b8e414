/**
 * An NVMe 1.4 controller on the plugin API ({@link io.javadevices.pci.PciDevice}), loadable by name
 * {@code nvme} through {@link io.javadevices.nvme.NvmePlugin}, with Doorbell Buffer Config (shadow
 * doorbells + EventIdx) as the Linux nvme driver uses it.
 *
 * <h2>Where things are</h2>
 * <ul>
 * <li>{@link io.javadevices.nvme.NvmePlugin}, {@link io.javadevices.nvme.NvmeOptions}: plugin entry and
 *     option parsing ({@code namespaces queues dbbuf serial model mqes mdts poll-us}).</li>
 * <li>{@link io.javadevices.nvme.NvmeController}: PCI identity, BAR0 registers/doorbells, enable /
 *     disable / shutdown / FLR, DBBUF association, interrupt delivery, statistics.</li>
 * <li>{@code queue}: {@link io.javadevices.nvme.queue.QueueWorker} (one thread per SQ: fetch, execute,
 *     post, interrupt, EventIdx re-arm), {@link io.javadevices.nvme.queue.SubmissionQueue},
 *     {@link io.javadevices.nvme.queue.CompletionQueue}, {@link io.javadevices.nvme.queue.ShadowDoorbell}.</li>
 * <li>{@code admin}: {@link io.javadevices.nvme.admin.AdminCommandDispatcher} maps each admin opcode to
 *     its handler class (Identify, Queue, Feature, LogPage, DoorbellBufferConfig, AsyncEvents).</li>
 * <li>{@code io}: {@link io.javadevices.nvme.io.IoCommandHandler} (Read, Write, Flush, Write Zeroes, DSM).</li>
 * <li>{@code dma}: {@link io.javadevices.nvme.dma.PrpWalker} (PRP1/PRP2/PRP lists, CC.MPS pages).</li>
 * <li>{@code backend}: {@link io.javadevices.nvme.backend.BlockBackend} and its ram / null / file kinds.</li>
 * </ul>
 *
 * <h2>Threads</h2>
 * The host's MMIO thread only stores doorbell values and unparks workers; register changes (CC) are
 * synchronized on the controller and a disable joins every worker before returning. Each SQ worker owns
 * its queue state and its counters; completion queues shared by several SQs are locked only then.
 *
 * <h2>DBBUF decisions (see docs/dbbuf.md)</h2>
 * The admin queue never uses shadow slots (Linux and SPDK never write them). For I/O queues with DBBUF
 * active the shadow slot is authoritative and an MMIO doorbell is only a wake-up (a stale posted MMIO
 * value can therefore never re-execute commands); values ≥ queue size are ignored and reported as an
 * "Invalid Doorbell Write Value" asynchronous event. SQ EventIdx = the tail the worker stopped at,
 * published before parking with a full fence and re-check; CQ EventIdx = 0xFFFF ("at most once per
 * wrap") except while a worker waits on a full CQ (then the known head) or, with INTx, the last posted
 * entry. The host must keep its shadow slots consistent (Linux memsets them on every reset).
 */
package io.javadevices.nvme;
