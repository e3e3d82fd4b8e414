package io.javadevices.nvme.spec;

import io.javadevices.pci.LittleEndian;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemoryLayout.PathElement;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;

/**
 * The building blocks of the structure declarations in this package: byte-packed little-endian members (NVMe 1.4
 * §1.5; NVMe structures have fields at odd offsets, so every member has alignment 1), reserved gaps, the size check
 * (QEMU's {@code _nvme_check_size()} in include/block/nvme.h), and typed fields looked up by name in the layout, so
 * the layout is the only place an offset is written down.
 */
final class Fields {
    private Fields() {
    }

    // ---- members

    static MemoryLayout u8(String name) {
        return ValueLayout.JAVA_BYTE.withName(name);
    }

    static MemoryLayout u16(String name) {
        return LittleEndian.SHORT.withName(name);
    }

    static MemoryLayout u32(String name) {
        return LittleEndian.INT.withName(name);
    }

    static MemoryLayout u64(String name) {
        return LittleEndian.LONG.withName(name);
    }

    /** A byte array field (a string, an identifier, a 128-bit counter). */
    static MemoryLayout bytes(String name, long length) {
        return MemoryLayout.sequenceLayout(length, ValueLayout.JAVA_BYTE).withName(name);
    }

    static MemoryLayout array(String name, long count, MemoryLayout element) {
        return MemoryLayout.sequenceLayout(count, element).withName(name);
    }

    /** Reserved bytes: unnamed, so no field can be looked up in them. */
    static MemoryLayout reserved(long length) {
        return MemoryLayout.paddingLayout(length);
    }

    /**
     * The structure, or an error at class initialisation if its members do not add up to the size the spec gives:
     * a mis-declared structure fails every test that touches it, never a guest.
     */
    static StructLayout struct(String name, long specSize, MemoryLayout... members) {
        StructLayout layout = MemoryLayout.structLayout(members).withName(name);
        if (layout.byteSize() != specSize) {
            throw new IllegalStateException(name + " is declared as " + layout.byteSize() + " bytes; the spec says "
                    + specSize);
        }
        return layout;
    }

    // ---- typed fields, checked against the member's size

    static U8 u8(StructLayout layout, String name) {
        return new U8(name, offset(layout, 1, name, PathElement.groupElement(name)));
    }

    static U16 u16(StructLayout layout, String name) {
        return new U16(name, offset(layout, 2, name, PathElement.groupElement(name)));
    }

    static U32 u32(StructLayout layout, String name) {
        return new U32(name, offset(layout, 4, name, PathElement.groupElement(name)));
    }

    static U64 u64(StructLayout layout, String name) {
        return new U64(name, offset(layout, 8, name, PathElement.groupElement(name)));
    }

    static Bytes bytes(StructLayout layout, String name) {
        PathElement p = PathElement.groupElement(name);
        return new Bytes(name, layout.byteOffset(p), layout.select(p).byteSize());
    }

    /** {@code array[index].member} (member null: the element itself), e.g. PSD[0].MP. */
    static U16 u16(StructLayout layout, String array, long index, String member) {
        return new U16(label(array, index, member), element(layout, 2, array, index, member));
    }

    static U64 u64(StructLayout layout, String array, long index, String member) {
        return new U64(label(array, index, member), element(layout, 8, array, index, member));
    }

    static Bytes bytes(StructLayout layout, String array, long index) {
        PathElement[] open = {PathElement.groupElement(array), PathElement.sequenceElement()};
        PathElement[] at = {PathElement.groupElement(array), PathElement.sequenceElement(index)};
        return new Bytes(label(array, index, null), layout.byteOffset(at), layout.select(open).byteSize());
    }

    private static long element(StructLayout layout, long size, String array, long index, String member) {
        // select() takes only open sequence elements; byteOffset() only fixed ones.
        PathElement[] open = member == null
                ? new PathElement[] {PathElement.groupElement(array), PathElement.sequenceElement()}
                : new PathElement[] {PathElement.groupElement(array), PathElement.sequenceElement(),
                        PathElement.groupElement(member)};
        PathElement[] at = member == null
                ? new PathElement[] {PathElement.groupElement(array), PathElement.sequenceElement(index)}
                : new PathElement[] {PathElement.groupElement(array), PathElement.sequenceElement(index),
                        PathElement.groupElement(member)};
        check(layout, size, label(array, index, member), layout.select(open));
        return layout.byteOffset(at);
    }

    private static String label(String array, long index, String member) {
        return array + "[" + index + "]" + (member == null ? "" : "." + member);
    }

    /** The byte offset of a named member (the SQE and CQE are read and written with plain offsets). */
    static long offset(StructLayout layout, String name) {
        return layout.byteOffset(PathElement.groupElement(name));
    }

    private static long offset(StructLayout layout, long size, String label, PathElement path) {
        check(layout, size, label, layout.select(path));
        return layout.byteOffset(path);
    }

    private static void check(StructLayout layout, long size, String label, MemoryLayout member) {
        if (!(member instanceof ValueLayout) || member.byteSize() != size) {
            throw new IllegalStateException(layout.name().orElse("?") + "." + label + " is " + member + ", not a "
                    + size + "-byte value");
        }
    }
}
