package io.javadevices.vfiouser.protocol;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;

import static java.lang.foreign.MemoryLayout.PathElement.groupElement;

/**
 * A named little-endian integer field of a {@link WireStructs} layout, read and written through the
 * layout's {@link VarHandle}. Unsigned 16/32-bit fields come back widened ({@code int} / non-negative
 * {@code long}) so no caller sees a negative size; 64-bit fields are raw bits (compare them with
 * {@link Long#compareUnsigned}). The {@code base} argument is where the struct starts in the segment.
 *
 * <p>The accessors are records so their components are trusted final fields: held in a {@code static
 * final}, the JIT folds the handle and inlines the access, so a field read costs what a hand-written
 * {@code segment.get(layout, offset)} costs and allocates nothing.
 */
public final class Field {
    private Field() {
    }

    private static VarHandle varHandle(StructLayout struct, String name, Class<?> carrier) {
        ValueLayout member = (ValueLayout) struct.select(groupElement(name));
        if (member.carrier() != carrier) {
            throw new IllegalArgumentException(name + " is a " + member.carrier() + " field");
        }
        return struct.varHandle(groupElement(name));
    }

    /** A {@code uint16_t} field. */
    public record U16(VarHandle handle, long offset) {
        public static U16 of(StructLayout struct, String name) {
            return new U16(varHandle(struct, name, short.class), struct.byteOffset(groupElement(name)));
        }

        public int get(MemorySegment s) {
            return get(s, 0L);
        }

        public int get(MemorySegment s, long base) {
            return (short) handle.get(s, base) & 0xFFFF;
        }

        public void set(MemorySegment s, int value) {
            set(s, 0L, value);
        }

        public void set(MemorySegment s, long base, int value) {
            handle.set(s, base, (short) value);
        }
    }

    /** A {@code uint32_t} field. */
    public record U32(VarHandle handle, long offset) {
        public static U32 of(StructLayout struct, String name) {
            return new U32(varHandle(struct, name, int.class), struct.byteOffset(groupElement(name)));
        }

        /** The field as a non-negative long. */
        public long get(MemorySegment s) {
            return get(s, 0L);
        }

        public long get(MemorySegment s, long base) {
            return (int) handle.get(s, base) & 0xFFFF_FFFFL;
        }

        /** The field as raw int bits (flags compared with constants). */
        public int bits(MemorySegment s) {
            return (int) handle.get(s, 0L);
        }

        public void set(MemorySegment s, long value) {
            set(s, 0L, value);
        }

        public void set(MemorySegment s, long base, long value) {
            handle.set(s, base, (int) value);
        }
    }

    /** A {@code uint64_t} field. */
    public record U64(VarHandle handle, long offset) {
        public static U64 of(StructLayout struct, String name) {
            return new U64(varHandle(struct, name, long.class), struct.byteOffset(groupElement(name)));
        }

        public long get(MemorySegment s) {
            return get(s, 0L);
        }

        public long get(MemorySegment s, long base) {
            return (long) handle.get(s, base);
        }

        public void set(MemorySegment s, long value) {
            set(s, 0L, value);
        }

        public void set(MemorySegment s, long base, long value) {
            handle.set(s, base, value);
        }
    }
}
