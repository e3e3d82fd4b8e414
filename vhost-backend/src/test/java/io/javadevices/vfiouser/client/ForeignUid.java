package io.javadevices.vfiouser.client;

import io.javadevices.vfiouser.sys.FileIdentity;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.invoke.MethodHandle;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Runs a task as another user, inside this JVM, so that a test can be a client with a foreign uid: a
 * fresh thread changes its own effective uid with the raw setresuid system call. Linux credentials
 * belong to each thread (task); only glibc's setresuid() wrapper propagates a change to all threads, the
 * raw syscall does not, so the rest of the JVM keeps its uid. SO_PEERCRED records the connecting thread's
 * credentials. Needs root (CAP_SETUID); {@link #available} says whether it works here.
 */
public final class ForeignUid {
    private static final Linker LINKER = Linker.nativeLinker();
    /** long syscall(long number, ...). */
    private static final MethodHandle SYSCALL = LINKER.downcallHandle(LINKER.defaultLookup().find("syscall").orElseThrow(),
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG), Linker.Option.firstVariadicArg(1));
    private static final long SYS_SETRESUID = "aarch64".equals(System.getProperty("os.arch")) ? 147 : 117;
    private static final long UNCHANGED = -1;
    /** The conventional "nobody". */
    public static final int NOBODY = 65534;

    private ForeignUid() {
    }

    private static long setEffectiveUid(long uid) {
        try {
            return (long) SYSCALL.invokeExact(SYS_SETRESUID, UNCHANGED, uid, UNCHANGED);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** True if this process is root and a thread can switch its effective uid. */
    public static boolean available() {
        if (FileIdentity.geteuid() != 0) {
            return false;
        }
        try {
            return call(NOBODY, () -> FileIdentity.geteuid() == NOBODY);
        } catch (Exception e) {
            return false;
        }
    }

    /** Runs {@code task} on a new thread whose effective uid is {@code uid}; rethrows what it throws. */
    public static <T> T call(int uid, Callable<T> task) throws Exception {
        CompletableFuture<T> result = new CompletableFuture<>();
        Thread t = Thread.ofPlatform().name("foreign-uid " + uid).start(() -> {
            if (setEffectiveUid(uid) != 0) {
                result.completeExceptionally(new IllegalStateException("setresuid failed"));
                return;
            }
            try {
                result.complete(task.call());
            } catch (Throwable e) {
                result.completeExceptionally(e);
            } finally {
                setEffectiveUid(0); // the saved uid is still 0, so this is allowed
            }
        });
        t.join();
        try {
            return result.get();
        } catch (ExecutionException e) {
            if (e.getCause() instanceof Exception x) {
                throw x;
            }
            throw e;
        }
    }
}
