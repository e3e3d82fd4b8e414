/**
 * An NVMe 1.4 controller on the plugin API ({@link io.javadevices.pci.PciDevice}), loadable by name
 * {@code nvme} through {@link io.javadevices.nvme.NvmePlugin}, with Doorbell Buffer Config (shadow
 * doorbells + EventIdx) as the Linux nvme driver uses it.
 *
 * <h2>Where things are</h2>
 * <ul>
 * <li>{@link io.javadevices.nvme.NvmePlugin}, {@link io.javadevices.nvme.NvmeOptions}: plugin entry and
 *     option parsing ({@code namespaces queues dbbuf serial model mqes mdts poll-us doorbells nap-us
 *     nap-window-us stop-timeout-ms park-dbbuf-us park-trapped-us pool max-namespaces io-engine io-threads}).</li>
 * <li>{@link io.javadevices.nvme.NvmeController}: PCI identity, the CC state machine (enable / disable /
 *     shutdown / FLR), doorbell routing, statistics ({@link io.javadevices.nvme.NvmeStatistics} keys)
 *     and the wiring of the parts below.</li>
 * <li>{@code regs}: {@link io.javadevices.nvme.regs.Bar0Registers}, the BAR0 register map (offset,
 *     width, writable mask, reset value, on-write hook per register).</li>
 * <li>{@code irq}: {@link io.javadevices.nvme.irq.InterruptDelivery} (coalescing, MSI-X, INTx, INTMS/INTMC).</li>
 * <li>{@code queue}: {@link io.javadevices.nvme.queue.QueueTable} (SQs/CQs by id, workers, DBBUF pages),
 *     {@link io.javadevices.nvme.queue.QueueWorker} (one SQ's work as a poller on a thread of the host's
 *     worker pool, or of the admin queue's own: fetch, execute, post, interrupt, EventIdx re-arm; never waits
 *     for the host), {@link io.javadevices.nvme.queue.SubmissionQueue},
 *     {@link io.javadevices.nvme.queue.CompletionQueue} (each doorbell a {@code QueueDoorbell} reading one
 *     {@code DoorbellSource}: BAR0, polled page or shadow slot), {@link io.javadevices.nvme.queue.ShadowDoorbell},
 *     {@link io.javadevices.nvme.queue.IdlePolicy} (spin, nap or park of an idle worker),
 *     {@link io.javadevices.nvme.queue.OpcodeTable} (the shape of a command set's table),
 *     {@link io.javadevices.nvme.queue.WorkerGrace} (frees a deleted namespace's backend once no worker can be
 *     inside a command on it, nor an operation in flight), {@link io.javadevices.nvme.queue.InFlight} (a worker's
 *     in-flight slots: what an asynchronous operation needs when it completes),
 *     {@link io.javadevices.nvme.queue.NamespaceView} / {@link io.javadevices.nvme.queue.NamespaceViews} (a
 *     worker's asynchronous path to one namespace and its counters; {@code LatencyHistogram}) and
 *     {@link io.javadevices.nvme.queue.WorkerQuiescer} (the guest memory unmap barrier),
 *     {@link io.javadevices.nvme.queue.CommandOffload} / {@link io.javadevices.nvme.queue.OffloadLane} (the
 *     controller's thread for commands that would block a polling thread, and each queue's hand-over to it) and
 *     {@code CqePoster} (posting or holding one SQ's CQEs, one interrupt decision per batch).</li>
 * <li>{@code admin}: {@link io.javadevices.nvme.admin.AdminOpcodes} (the admin command table: dispatch,
 *     effects log, OACS), {@link io.javadevices.nvme.admin.AdminCommandDispatcher} and the handler classes
 *     (Identify, Queue, Feature, LogPage, DoorbellBufferConfig, AsyncEvents, LbaStatus, FormatNvm,
 *     NamespaceManagement, NamespaceAttachment, NamespaceLists for Identify CNS 10h-13h), all given an
 *     {@link io.javadevices.nvme.admin.AdminContext}; {@link io.javadevices.nvme.admin.NamespaceChangeNotices}
 *     and {@code ChangedNamespaceLog}: the Namespace Attribute Changed event.</li>
 * <li>{@code io}: {@link io.javadevices.nvme.io.NvmOpcodes} (the NVM command table: dispatch, effects
 *     log, ONCS) and {@link io.javadevices.nvme.io.IoCommandHandler} (Read, Write, Flush, Write Zeroes,
 *     DSM; their asynchronous half in {@code AsyncCommands}; Compare, Verify, Write Uncorrectable and Copy
 *     in classes of their own; {@code OffloadedCommands}: which commands go to the offload thread), given an
 *     {@link io.javadevices.nvme.io.IoContext} snapshot at each enable.</li>
 * <li>{@code dma}: {@link io.javadevices.nvme.dma.PrpWalker} (PRP1/PRP2/PRP lists, CC.MPS pages),
 *     {@link io.javadevices.nvme.dma.SglWalker} (SGL segments and descriptors) and
 *     {@link io.javadevices.nvme.dma.DataPointer}, which picks one by PSDT for I/O commands.</li>
 * <li>{@code backend}: {@link io.javadevices.nvme.backend.BlockBackend} and its ram / null / file kinds; the
 *     asynchronous contracts ({@link io.javadevices.nvme.backend.IoEngine}, {@code AsyncIo}, {@code IoVector},
 *     {@code CompletionInbox}), {@link io.javadevices.nvme.backend.ThreadPoolEngine} and
 *     {@link io.javadevices.nvme.backend.IoEngines} (option {@code io-engine}).</li>
 * <li>{@code pool}: {@link io.javadevices.nvme.pool.NvmPool}, the NVM capacity (TNVMCAP/UNVMCAP) namespaces
 *     are created from, in RAM or a directory whose {@link io.javadevices.nvme.pool.PoolManifest} keeps the
 *     namespace table across restarts; {@link io.javadevices.nvme.pool.PoolSpec} the {@code pool=} option.</li>
 * <li>{@code control}: {@link io.javadevices.nvme.control.NamespaceControl}, the controller's
 *     {@link io.javadevices.pci.DeviceControl} ({@code namespace_list}, {@code namespace_add},
 *     {@code namespace_remove}, {@code namespace_resize}: the host changes namespaces while the guest runs, the
 *     guest gets Namespace Attribute Changed), in the command line's grammar ({@code CommandLineGrammar}).</li>
 * </ul>
 *
 * <h2>Threads</h2>
 * The host's MMIO thread only stores doorbell values and unparks workers; register changes (CC) are
 * synchronized on the controller and a disable joins every worker before returning. Each SQ worker owns
 * its queue state and its counters; completion queues shared by several SQs are locked only then. An I/O
 * worker's asynchronous engine is its own: its pool threads (or io_uring ring) and its completion inbox are
 * shared with no other queue.
 *
 * <h2>DBBUF decisions</h2>
 * The admin queue never uses shadow slots (Linux and SPDK never write them). For I/O queues with DBBUF
 * active the shadow slot is authoritative and an MMIO doorbell is only a wake-up (a stale posted MMIO
 * value can therefore never re-execute commands); values ≥ queue size are ignored and reported as an
 * "Invalid Doorbell Write Value" asynchronous event. SQ EventIdx = the tail the worker stopped at,
 * published before parking with a full fence and re-check; CQ EventIdx = 0xFFFF ("at most once per
 * wrap") except while a worker waits on a full CQ (then the known head) or, with INTx, the last posted
 * entry. The host must keep its shadow slots consistent (Linux memsets them on every reset).
 *
 * <h2>Design notes</h2>
 * In the repository's {@code docs/} folder: {@code doorbell-buffer-config.md} (shadow doorbells, EventIdx,
 * naps, seeding, fallback) and {@code reset-and-durability.md} (the reset state machine, FUA, VWC,
 * sticky sync errors, image locks).
 */
package io.javadevices.nvme;
