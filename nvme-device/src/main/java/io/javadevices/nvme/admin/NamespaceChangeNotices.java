package io.javadevices.nvme.admin;

import io.javadevices.nvme.model.ChangedNamespaces;

import java.util.function.IntConsumer;

/**
 * Namespace Attribute Changed (NVMe 1.4 §5.2.1, §5.14.1.4): a {@link io.javadevices.nvme.model.NamespaceTable}
 * listener. Every change (a namespace attached, detached, or formatted) is recorded in the Changed Namespace
 * List, whatever the host enabled; the notice itself is raised only while Asynchronous Event Configuration bit 8
 * is set (Linux nvme_enable_aen sets it from OAES at every start), and {@link AsyncEvents} keeps it to one
 * outstanding event until the host reads log 04h ({@link ChangedNamespaceLog}).
 *
 * <p>Runs on the thread that changed the table (the admin worker for Namespace Management, Attachment and
 * Format NVM); the kick makes the admin worker complete an outstanding AER promptly.
 */
public final class NamespaceChangeNotices implements IntConsumer {
    private final AsyncEvents events;
    private final FeatureState features;
    private final Runnable kickAdmin;

    public NamespaceChangeNotices(AsyncEvents events, FeatureState features, Runnable kickAdmin) {
        this.events = events;
        this.features = features;
        this.kickAdmin = kickAdmin;
    }

    @Override
    public void accept(int nsid) {
        events.changedNamespaces().add(nsid);
        notifyHost(events, features);
        kickAdmin.run();
    }

    /** Raises the notice if the list holds changes and the host enabled it; dropped while the type is masked. */
    static void notifyHost(AsyncEvents events, FeatureState features) {
        ChangedNamespaces list = events.changedNamespaces();
        if (features.namespaceAttributeNotices() && !list.isEmpty()) {
            events.raise(AsyncEvents.NAMESPACE_ATTRIBUTE_CHANGED);
        }
    }
}
