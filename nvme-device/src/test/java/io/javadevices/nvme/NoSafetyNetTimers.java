package io.javadevices.nvme;

import io.javadevices.nvme.queue.QueueWorker;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Raises the queue workers' safety-net park timeouts to 5 s for one test and restores them afterwards,
 * so a lost wake-up (a doorbell, a look, an EventIdx re-arm gone wrong) shows up as a timeout instead of
 * being hidden by a timer. Use with {@code @ExtendWith(NoSafetyNetTimers.class)}.
 */
final class NoSafetyNetTimers implements BeforeEachCallback, AfterEachCallback {
    private static final ExtensionContext.Namespace NS = ExtensionContext.Namespace.create(NoSafetyNetTimers.class);

    @Override
    public void beforeEach(ExtensionContext context) {
        context.getStore(NS).put("saved", new long[] {QueueWorker.parkNanosShadow, QueueWorker.parkNanosMmio});
        QueueWorker.parkNanosShadow = 5_000_000_000L;
        QueueWorker.parkNanosMmio = 5_000_000_000L;
    }

    @Override
    public void afterEach(ExtensionContext context) {
        long[] saved = context.getStore(NS).remove("saved", long[].class);
        QueueWorker.parkNanosShadow = saved[0];
        QueueWorker.parkNanosMmio = saved[1];
    }
}
