/**
 * The plugin API: what a PCI device implemented in Java needs from a host, and what a host needs from
 * the device. Dependency-free.
 *
 * <ul>
 *   <li>{@link io.javadevices.pci.PciDevice} — the device contract (config space, reset, close).</li>
 *   <li>{@link io.javadevices.pci.ConfigSpace} — config space with standard semantics, made with a builder.</li>
 *   <li>{@link io.javadevices.pci.Bar} and {@link io.javadevices.pci.MmioHandler} — BARs and their MMIO callbacks.</li>
 *   <li>{@link io.javadevices.pci.GuestMemory} — bounds-checked guest memory for DMA on {@code MemorySegment}s.</li>
 *   <li>{@link io.javadevices.pci.InterruptSink} — MSI-X and INTx delivery.</li>
 *   <li>{@link io.javadevices.pci.WorkerPool} — the host's shared, bounded threads that poll device queues.</li>
 *   <li>{@link io.javadevices.pci.DeviceControl} — runtime management a host's control plane forwards to a device;
 *       {@link io.javadevices.pci.Histogram} — latency histograms a host exports.</li>
 *   <li>{@link io.javadevices.pci.PciDevicePlugin} — ServiceLoader SPI creating devices by name,
 *       with the command-line options ({@link io.javadevices.pci.PluginOption}) and status line it gives a host.</li>
 * </ul>
 */
package io.javadevices.pci;
