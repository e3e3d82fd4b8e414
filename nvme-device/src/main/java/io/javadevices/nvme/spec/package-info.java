/**
 * NVMe 1.4 data structures, each declared once as a byte-packed little-endian {@code StructLayout} whose size is
 * checked when the class initialises (QEMU's {@code _nvme_check_size()} in include/block/nvme.h): Identify Controller
 * ({@link io.javadevices.nvme.spec.IdCtrl}) and Namespace ({@link io.javadevices.nvme.spec.IdNs}), the SMART, Error
 * Information, Firmware Slot and Commands Supported and Effects logs, and the submission and completion queue entries.
 *
 * <p>Code sets fields by name ({@code IdCtrl.WCTEMP.set(page, (short) 0x157)}): each field is a typed
 * {@link io.javadevices.nvme.spec.U16} (or U8, U32, U64, {@link io.javadevices.nvme.spec.Bytes}) whose offset is
 * looked up in the layout, so no offset is written down twice. The package depends on nothing of the controller.
 */
package io.javadevices.nvme.spec;
