package io.javadevices.nvme.admin;

import io.javadevices.nvme.model.ErrorLog;
import io.javadevices.nvme.queue.Sqe;
import io.javadevices.nvme.spec.EffectsLog;
import io.javadevices.nvme.spec.ErrorLogEntry;
import io.javadevices.nvme.spec.FeatureEffectsLog;
import io.javadevices.nvme.spec.FirmwareSlotLog;
import io.javadevices.nvme.spec.SmartLog;
import io.javadevices.nvme.spec.Status;
import io.javadevices.nvme.spec.SupportedLogPagesLog;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

import static io.javadevices.nvme.admin.AsyncEvents.NO_EVENT;
import static io.javadevices.nvme.admin.AsyncEvents.TYPE_ERROR_STATUS;
import static io.javadevices.nvme.admin.AsyncEvents.TYPE_NOTICE;
import static io.javadevices.nvme.admin.AsyncEvents.TYPE_SMART_HEALTH;

/**
 * The log pages of Get Log Page (NVMe 1.4 §5.14, NVMe 2.0 §5.16), one entry each, as the opcode tables are for
 * commands: {@link LogPageCommand} serves exactly the LIDs of {@link #ALL} (any other is Invalid Log Page) and the
 * Supported Log Pages log (00h) is generated from it, so a log page cannot be readable without being listed, nor
 * the other way round.
 *
 * <pre>
 * 00h Supported Log Pages            1024 bytes  no event
 * 01h Error Information              4096 bytes  un-masks Error status events
 * 02h SMART / Health Information      512 bytes  un-masks SMART / Health status events
 * 03h Firmware Slot Information       512 bytes  no event
 * 04h Changed Namespace List         4096 bytes  un-masks Notice events ({@link ChangedNamespaceLog})
 * 05h Commands Supported and Effects 4096 bytes  no event
 * 12h Feature Identifiers Supported  1024 bytes  no event (generated from {@link FeatureTable})
 *     and Effects
 * </pre>
 *
 * <p>Adding a log page is one {@code .add} here: its LID, name, size in bytes (at most 8 KiB, the admin scratch
 * buffer; a log of variable length declares its largest size and says its own length inside), the asynchronous
 * event type that reading it with RAE = 0 un-masks ({@link AsyncEvents#TYPE_NOTICE} for the Changed Namespace
 * List, {@link AsyncEvents#NO_EVENT} if none) and its renderer, which fills the zeroed page and returns a status
 * (e.g. Invalid Field for an NSID the log does not accept). The renderer reaches the controller through
 * {@link LogPageCommand#context()}; a log with its own state gets its own class, as the Changed Namespace List has
 * ({@link ChangedNamespaceLog}, which also clears what a read with RAE = 0 showed).
 */
final class LogPages {
    /** Supported Log Pages (NVMe 2.0 §5.16.1.1), Error (§5.14.1.1), SMART, Firmware Slot, the two effects logs. */
    static final int SUPPORTED_LOG_PAGES = 0x00, ERROR_INFO = 0x01, SMART = 0x02, FIRMWARE_SLOT = 0x03,
            COMMAND_EFFECTS = 0x05, FEATURE_EFFECTS = 0x12;
    /** The largest log page: the admin dispatcher's scratch buffer. */
    static final int MAX_SIZE = 8192;

    /** Fills {@code page} (zeroed, {@link Page#size} bytes) for {@code cmd}; returns SUCCESS or the command's status. */
    @FunctionalInterface
    interface Renderer {
        int render(LogPageCommand logs, Sqe cmd, MemorySegment page);
    }

    /** @param eventType the asynchronous event type a read with RAE = 0 un-masks, or {@link AsyncEvents#NO_EVENT} */
    record Page(int lid, String name, int size, int eventType, Renderer renderer) {
    }

    static final LogPages ALL = new LogPages()
            .add(SUPPORTED_LOG_PAGES, "Supported Log Pages", (int) SupportedLogPagesLog.SIZE, NO_EVENT,
                    (l, cmd, page) -> l.supportedLogPages(page))
            .add(ERROR_INFO, "Error Information", ErrorLog.ENTRIES * (int) ErrorLogEntry.SIZE, TYPE_ERROR_STATUS,
                    (l, cmd, page) -> l.errorInformation(page))
            .add(SMART, "SMART / Health Information", (int) SmartLog.SIZE, TYPE_SMART_HEALTH,
                    (l, cmd, page) -> l.smart(cmd, page))
            .add(FIRMWARE_SLOT, "Firmware Slot Information", (int) FirmwareSlotLog.SIZE, NO_EVENT,
                    (l, cmd, page) -> l.firmware(page))
            .add(ChangedNamespaceLog.LID, "Changed Namespace List", ChangedNamespaceLog.SIZE, TYPE_NOTICE,
                    (l, cmd, page) -> l.changedNamespaces().render(page))
            .add(COMMAND_EFFECTS, "Commands Supported and Effects", (int) EffectsLog.SIZE, NO_EVENT,
                    (l, cmd, page) -> l.effects(page))
            .add(LbaStatusLog.LID, "LBA Status Information", LbaStatusLog.SIZE, NO_EVENT,
                    (l, cmd, page) -> {
                        LbaStatusLog.render(l.context().namespaces(), page);
                        return Status.SUCCESS;
                    })
            .add(FEATURE_EFFECTS, "Feature Identifiers Supported and Effects", (int) FeatureEffectsLog.SIZE, NO_EVENT,
                    (l, cmd, page) -> l.featureEffects(page));

    private final List<Page> pages = new ArrayList<>();
    private final Page[] byLid = new Page[256];

    private LogPages() {
    }

    private LogPages add(int lid, String name, int size, int eventType, Renderer renderer) {
        if (lid < 0 || lid > 255 || byLid[lid] != null || size <= 0 || size > MAX_SIZE || size % 4 != 0) {
            throw new IllegalArgumentException("log page " + lid + " (" + name + "): twice, out of range or size " + size);
        }
        Page p = new Page(lid, name, size, eventType, renderer);
        pages.add(p);
        byLid[lid] = p;
        return this;
    }

    /** The log page {@code lid}, or null: Invalid Log Page. */
    Page page(int lid) {
        return byLid[lid & 0xFF];
    }

    List<Page> pages() {
        return Collections.unmodifiableList(pages);
    }
}
