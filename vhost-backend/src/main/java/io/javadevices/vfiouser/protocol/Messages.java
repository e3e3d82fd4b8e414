package io.javadevices.vfiouser.protocol;

import io.javadevices.vfiouser.sys.Errno;

import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.*;
import static java.lang.foreign.MemoryLayout.PathElement.groupElement;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * The typed vfio-user requests and their one decoder. {@link #decode} checks everything a message's own
 * bytes can be checked for — header flags, fds where none belong, body length and {@code argsz}, flag
 * combinations — in this one place, so a handler receives a well-formed request and only checks it
 * against the device (region and IRQ indices, ranges). Everything it rejects is EINVAL unless the spec
 * names another errno (ENOTSUP for an unsupported version or dirty bitmap, ENOSYS for an unknown command).
 *
 * <p>One decoder per session: REGION_READ / REGION_WRITE (the doorbell path) decode into one reused
 * {@link RegionAccess}, so a doorbell allocates nothing; the other requests are rare and are records.
 */
public final class Messages {
    /** A decoded request. */
    public sealed interface Message
            permits Version, DmaMap, DmaUnmap, DeviceGetInfo, RegionInfoRequest, IrqInfoRequest, SetIrqs,
            RegionAccess, WriteMulti, DeviceReset {
    }

    /** VFIO_USER_VERSION from a client whose major version this server speaks. */
    public record Version(int minor, Capabilities client, int requestLength) implements Message {
        public static final Field.U16 MAJOR = Field.U16.of(WireStructs.VERSION, "major");
        public static final Field.U16 MINOR = Field.U16.of(WireStructs.VERSION, "minor");
        /** Where the NUL-terminated JSON starts. */
        public static final int JSON = (int) WireStructs.VERSION.byteSize();
    }

    /** VFIO_USER_DMA_MAP; the fd (if any) is still the session's: take it with {@link ReceivedFds#take}. */
    public record DmaMap(long address, long size, long offset, int flags, boolean hasFd) implements Message {
        static final Field.U32 ARGSZ = Field.U32.of(WireStructs.DMA_MAP, "argsz");
        static final Field.U32 FLAGS = Field.U32.of(WireStructs.DMA_MAP, "flags");
        static final Field.U64 OFFSET = Field.U64.of(WireStructs.DMA_MAP, "offset");
        static final Field.U64 ADDRESS = Field.U64.of(WireStructs.DMA_MAP, "address");
        static final Field.U64 SIZE = Field.U64.of(WireStructs.DMA_MAP, "size");
    }

    /** VFIO_USER_DMA_UNMAP with flags 0 (one range) or {@link VfioUserProtocol#DMA_UNMAP_FLAG_ALL}. */
    public record DmaUnmap(int flags, long address, long size) implements Message {
        public static final Field.U32 ARGSZ = Field.U32.of(WireStructs.DMA_UNMAP, "argsz");
        public static final Field.U32 FLAGS = Field.U32.of(WireStructs.DMA_UNMAP, "flags");
        public static final Field.U64 ADDRESS = Field.U64.of(WireStructs.DMA_UNMAP, "address");
        public static final Field.U64 SIZE = Field.U64.of(WireStructs.DMA_UNMAP, "size");

        public boolean all() {
            return flags == DMA_UNMAP_FLAG_ALL;
        }
    }

    /** VFIO_USER_DEVICE_GET_INFO. */
    public record DeviceGetInfo() implements Message {
        public static final Field.U32 ARGSZ = Field.U32.of(WireStructs.DEVICE_INFO, "argsz");
        public static final Field.U32 FLAGS = Field.U32.of(WireStructs.DEVICE_INFO, "flags");
        public static final Field.U32 NUM_REGIONS = Field.U32.of(WireStructs.DEVICE_INFO, "num_regions");
        public static final Field.U32 NUM_IRQS = Field.U32.of(WireStructs.DEVICE_INFO, "num_irqs");
        static final DeviceGetInfo INSTANCE = new DeviceGetInfo();
    }

    /** VFIO_USER_DEVICE_GET_REGION_INFO: {@code argsz} is what the client's reply buffer holds. */
    public record RegionInfoRequest(long argsz, long index) implements Message {
        public static final Field.U32 ARGSZ = Field.U32.of(WireStructs.REGION_INFO, "argsz");
        public static final Field.U32 FLAGS = Field.U32.of(WireStructs.REGION_INFO, "flags");
        public static final Field.U32 INDEX = Field.U32.of(WireStructs.REGION_INFO, "index");
        public static final Field.U32 CAP_OFFSET = Field.U32.of(WireStructs.REGION_INFO, "cap_offset");
        public static final Field.U64 SIZE = Field.U64.of(WireStructs.REGION_INFO, "size");
        public static final Field.U64 OFFSET = Field.U64.of(WireStructs.REGION_INFO, "offset");
    }

    /** VFIO_USER_DEVICE_GET_IRQ_INFO. */
    public record IrqInfoRequest(long index) implements Message {
        public static final Field.U32 ARGSZ = Field.U32.of(WireStructs.IRQ_INFO, "argsz");
        public static final Field.U32 FLAGS = Field.U32.of(WireStructs.IRQ_INFO, "flags");
        public static final Field.U32 INDEX = Field.U32.of(WireStructs.IRQ_INFO, "index");
        public static final Field.U32 COUNT = Field.U32.of(WireStructs.IRQ_INFO, "count");
    }

    /**
     * VFIO_USER_DEVICE_SET_IRQS with exactly one DATA_* and one ACTION_* flag and an index below
     * {@link VfioUserProtocol#NUM_IRQS}; {@code bools} holds the DATA_BOOL bytes (empty otherwise), and
     * DATA_EVENTFD comes with no fd or one per vector.
     */
    public record SetIrqs(int index, long start, long count, int data, int action, MemorySegment bools)
            implements Message {
        static final Field.U32 ARGSZ = Field.U32.of(WireStructs.SET_IRQS, "argsz");
        static final Field.U32 FLAGS = Field.U32.of(WireStructs.SET_IRQS, "flags");
        static final Field.U32 INDEX = Field.U32.of(WireStructs.SET_IRQS, "index");
        static final Field.U32 START = Field.U32.of(WireStructs.SET_IRQS, "start");
        static final Field.U32 COUNT = Field.U32.of(WireStructs.SET_IRQS, "count");
    }

    /**
     * VFIO_USER_REGION_READ or VFIO_USER_REGION_WRITE. Reused by its session for every access (valid until
     * the next message); a write's {@code count} equals its data bytes, which start at {@link #dataAt()}.
     */
    public static final class RegionAccess implements Message {
        public static final Field.U64 OFFSET = Field.U64.of(WireStructs.REGION_ACCESS, "offset");
        public static final Field.U32 REGION = Field.U32.of(WireStructs.REGION_ACCESS, "region");
        public static final Field.U32 COUNT = Field.U32.of(WireStructs.REGION_ACCESS, "count");
        /** Where the data starts: in a write's body, and in a read's reply. */
        public static final int DATA = (int) WireStructs.REGION_ACCESS.byteSize();

        private boolean write;
        private long offset;
        private long region;
        private long count;

        public boolean write() {
            return write;
        }

        public long offset() {
            return offset;
        }

        public long region() {
            return region;
        }

        public long count() {
            return count;
        }

        public long dataAt() {
            return DATA;
        }
    }

    /** VFIO_USER_REGION_WRITE_MULTI: {@code entries} well-formed entries (≤ 8 data bytes each) in {@code body}. */
    public record WriteMulti(MemorySegment body, int entries) implements Message {
        public static final Field.U64 WR_CNT = Field.U64.of(WireStructs.WRITE_MULTI, "wr_cnt");
        static final Field.U64 E_OFFSET = Field.U64.of(WireStructs.WRITE_MULTI_ENTRY, "offset");
        static final Field.U32 E_REGION = Field.U32.of(WireStructs.WRITE_MULTI_ENTRY, "region");
        static final Field.U32 E_COUNT = Field.U32.of(WireStructs.WRITE_MULTI_ENTRY, "count");
        static final long E_DATA = WireStructs.WRITE_MULTI_ENTRY.byteOffset(groupElement("data"));
        static final long ENTRY_SIZE = WireStructs.WRITE_MULTI_ENTRY.byteSize();
        static final long ENTRIES = WireStructs.WRITE_MULTI.byteSize();

        private long at(int i) {
            return ENTRIES + i * ENTRY_SIZE;
        }

        public long offset(int i) {
            return E_OFFSET.get(body, at(i));
        }

        public long region(int i) {
            return E_REGION.get(body, at(i));
        }

        public int count(int i) {
            return (int) E_COUNT.get(body, at(i));
        }

        /** Where entry {@code i}'s data starts in {@link #body()}. */
        public long dataAt(int i) {
            return at(i) + E_DATA;
        }
    }

    /** VFIO_USER_DEVICE_RESET. */
    public record DeviceReset() implements Message {
        static final DeviceReset INSTANCE = new DeviceReset();
    }

    private static final Field.U32 HEADER_FLAGS = Field.U32.of(WireStructs.HEADER, "flags");
    private static final Field.U16 HEADER_COMMAND = Field.U16.of(WireStructs.HEADER, "command");

    private final RegionAccess access = new RegionAccess();

    /**
     * Decodes the command in {@code header} whose {@code length} body bytes are in {@code body}.
     *
     * @throws VfioUserError for anything the error reply should name
     */
    public Message decode(MemorySegment header, MemorySegment body, int length, ReceivedFds fds)
            throws VfioUserError {
        int flags = HEADER_FLAGS.bits(header);
        int command = HEADER_COMMAND.get(header);
        if ((flags & FLAG_TYPE_MASK) != FLAG_TYPE_COMMAND || (flags & FLAG_ERROR) != 0) {
            throw new VfioUserError(Errno.EINVAL);
        }
        if (fds.truncated()) {
            throw new VfioUserError(Errno.EINVAL); // more fds than max_msg_fds: the kernel dropped some
        }
        if (command != CMD_DMA_MAP && command != CMD_DEVICE_SET_IRQS && fds.count() > 0) {
            throw new VfioUserError(Errno.EINVAL); // fds where none belong: the session closes them
        }
        return switch (command) {
            case CMD_REGION_WRITE -> regionAccess(body, length, true);
            case CMD_REGION_READ -> regionAccess(body, length, false);
            case CMD_VERSION -> version(body, length);
            case CMD_DMA_MAP -> dmaMap(body, length, fds);
            case CMD_DMA_UNMAP -> dmaUnmap(body, length);
            case CMD_DEVICE_GET_INFO -> {
                argsz(body, length, DeviceGetInfo.ARGSZ, WireStructs.DEVICE_INFO.byteSize(), false);
                yield DeviceGetInfo.INSTANCE;
            }
            case CMD_DEVICE_GET_REGION_INFO -> {
                long argsz = argsz(body, length, RegionInfoRequest.ARGSZ, WireStructs.REGION_INFO.byteSize(), false);
                yield new RegionInfoRequest(argsz, RegionInfoRequest.INDEX.get(body));
            }
            case CMD_DEVICE_GET_IRQ_INFO -> {
                argsz(body, length, IrqInfoRequest.ARGSZ, WireStructs.IRQ_INFO.byteSize(), false);
                yield new IrqInfoRequest(IrqInfoRequest.INDEX.get(body));
            }
            case CMD_DEVICE_SET_IRQS -> setIrqs(body, length, fds);
            case CMD_REGION_WRITE_MULTI -> writeMulti(body, length);
            case CMD_DEVICE_RESET -> {
                require(length == 0);
                yield DeviceReset.INSTANCE;
            }
            default -> throw new VfioUserError(Errno.ENOSYS);
        };
    }

    private static void require(boolean wellFormed) throws VfioUserError {
        if (!wellFormed) {
            throw new VfioUserError(Errno.EINVAL);
        }
    }

    /**
     * The one length and argsz rule: the body holds the struct and {@code argsz} covers it; with
     * {@code withinBody}, {@code argsz} also does not claim more than was sent (DMA_MAP / DMA_UNMAP).
     * For the GET_*_INFO requests argsz is the size of the client's reply buffer, which may be larger.
     */
    private static long argsz(MemorySegment body, int length, Field.U32 field, long structSize, boolean withinBody)
            throws VfioUserError {
        require(length >= structSize);
        long argsz = field.get(body);
        require(argsz >= structSize && (!withinBody || argsz <= length));
        return argsz;
    }

    private RegionAccess regionAccess(MemorySegment body, int length, boolean write) throws VfioUserError {
        require(length >= RegionAccess.DATA);
        long count = RegionAccess.COUNT.get(body);
        require(!write || count == length - RegionAccess.DATA);
        RegionAccess a = access;
        a.write = write;
        a.offset = RegionAccess.OFFSET.get(body);
        a.region = RegionAccess.REGION.get(body);
        a.count = count;
        return a;
    }

    private static Version version(MemorySegment body, int length) throws VfioUserError {
        require(length >= Version.JSON + 1);
        if (Version.MAJOR.get(body) != SUPPORTED_MAJOR) {
            throw new VfioUserError(Errno.ENOTSUP);
        }
        int jsonLength = length - Version.JSON;
        if (body.get(JAVA_BYTE, length - 1) == 0) {
            jsonLength--;
        }
        byte[] json = new byte[jsonLength];
        MemorySegment.copy(body, JAVA_BYTE, Version.JSON, json, 0, jsonLength);
        try {
            return new Version(Version.MINOR.get(body), Capabilities.parse(new String(json, StandardCharsets.UTF_8)),
                    length);
        } catch (IllegalArgumentException e) {
            throw new VfioUserError(Errno.EINVAL, "bad VERSION JSON: " + e.getMessage());
        }
    }

    private static DmaMap dmaMap(MemorySegment body, int length, ReceivedFds fds) throws VfioUserError {
        argsz(body, length, DmaMap.ARGSZ, WireStructs.DMA_MAP.byteSize(), true);
        require(fds.count() <= 1);
        return new DmaMap(DmaMap.ADDRESS.get(body), DmaMap.SIZE.get(body), DmaMap.OFFSET.get(body),
                DmaMap.FLAGS.bits(body), fds.count() == 1);
    }

    private static DmaUnmap dmaUnmap(MemorySegment body, int length) throws VfioUserError {
        argsz(body, length, DmaUnmap.ARGSZ, WireStructs.DMA_UNMAP.byteSize(), true);
        int flags = DmaUnmap.FLAGS.bits(body);
        if (flags != 0 && flags != DMA_UNMAP_FLAG_ALL) {
            throw new VfioUserError(flags == DMA_UNMAP_FLAG_GET_DIRTY_BITMAP ? Errno.ENOTSUP : Errno.EINVAL);
        }
        return new DmaUnmap(flags, DmaUnmap.ADDRESS.get(body), DmaUnmap.SIZE.get(body));
    }

    private static SetIrqs setIrqs(MemorySegment body, int length, ReceivedFds fds) throws VfioUserError {
        // argsz is not compared with the message length: kernel-style clients count the eventfd array in
        // it although the fds travel as SCM_RIGHTS (QEMU resets it to 20 for eventfds; be lenient anyway).
        argsz(body, length, SetIrqs.ARGSZ, WireStructs.SET_IRQS.byteSize(), false);
        int flags = SetIrqs.FLAGS.bits(body);
        long index = SetIrqs.INDEX.get(body);
        long count = SetIrqs.COUNT.get(body);
        int data = flags & IRQ_SET_DATA_MASK;
        int action = flags & IRQ_SET_ACTION_MASK_ALL;
        require((flags & ~(IRQ_SET_DATA_MASK | IRQ_SET_ACTION_MASK_ALL)) == 0
                && Integer.bitCount(data) == 1 && Integer.bitCount(action) == 1 && index < NUM_IRQS);
        require(data == IRQ_SET_DATA_EVENTFD || fds.count() == 0);
        require(data != IRQ_SET_DATA_EVENTFD || fds.count() == 0 || fds.count() == count);
        MemorySegment bools = MemorySegment.NULL;
        if (data == IRQ_SET_DATA_BOOL) {
            long at = WireStructs.SET_IRQS.byteSize();
            require(length >= at + count);
            bools = body.asSlice(at, count);
        }
        return new SetIrqs((int) index, SetIrqs.START.get(body), count, data, action, bools);
    }

    private static WriteMulti writeMulti(MemorySegment body, int length) throws VfioUserError {
        require(length >= WriteMulti.ENTRIES);
        long entries = WriteMulti.WR_CNT.get(body);
        require(entries >= 0 && entries <= WRITE_MULTI_MAX_ENTRIES
                && length == WriteMulti.ENTRIES + entries * WriteMulti.ENTRY_SIZE);
        WriteMulti m = new WriteMulti(body, (int) entries);
        for (int i = 0; i < m.entries(); i++) {
            require(m.count(i) >= 0 && m.count(i) <= WRITE_MULTI_MAX_DATA);
        }
        return m;
    }
}
