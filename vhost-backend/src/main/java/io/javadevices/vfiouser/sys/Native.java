package io.javadevices.vfiouser.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * The one FFM boundary style of this package: libc symbols bound once as {@code static final} downcall
 * handles (so the JIT can inline them), {@code errno} captured with {@code Linker.Option.captureCallState}
 * into a per-thread segment (allocated once per thread, so calls do not allocate), negative results
 * turned into {@link ErrnoException}. {@link LibC} and {@link FileIdentity} bind through it.
 */
final class Native {
    static final Linker LINKER = Linker.nativeLinker();
    static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");
    private static final StructLayout CAPTURE_LAYOUT = Linker.Option.captureStateLayout();
    private static final long ERRNO_OFFSET = CAPTURE_LAYOUT.byteOffset(MemoryLayout.PathElement.groupElement("errno"));

    /** One errno capture buffer per thread, allocated on first use and kept for the thread's life. */
    private static final ThreadLocal<MemorySegment> CAPTURE =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(CAPTURE_LAYOUT));

    private Native() {
    }

    /** A libc symbol; UnsatisfiedLinkError if the C library lacks it. */
    static MemorySegment symbol(String name) {
        return LINKER.defaultLookup().find(name)
                .orElseThrow(() -> new UnsatisfiedLinkError("libc symbol not found: " + name));
    }

    /** A downcall that captures errno: its first argument is the {@link #state()} segment. */
    static MethodHandle downcall(String name, FunctionDescriptor descriptor) {
        return LINKER.downcallHandle(symbol(name), descriptor, CAPTURE_ERRNO);
    }

    /** This thread's errno capture segment. */
    static MemorySegment state() {
        return CAPTURE.get();
    }

    static int errno(MemorySegment state) {
        return state.get(JAVA_INT, ERRNO_OFFSET);
    }

    /** Rethrows what a downcall's invokeExact threw (it declares Throwable but only fails on linkage). */
    static Error linkage(Throwable t) {
        if (t instanceof Error e) {
            throw e;
        }
        if (t instanceof RuntimeException r) {
            throw r;
        }
        return new AssertionError("downcall failed", t);
    }

    static int checked(String call, int result, MemorySegment state) throws ErrnoException {
        if (result < 0) {
            throw new ErrnoException(call, errno(state));
        }
        return result;
    }
}
