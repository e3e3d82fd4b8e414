package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.LinuxLikeDriver;
import io.javadevices.pci.GuestMemoryException;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Namespace Management and Attachment as nvme-cli issues them: {@code create-ns} fills a zeroed 4096-byte
 * structure with NSZE, NCAP, FLBAS, DPS and NMIC at their Identify Namespace offsets (libnvme
 * nvme_ns_mgmt_create, NSID 0); {@code attach-ns}/{@code detach-ns} send a controller list (count + CNTLIDs).
 */
final class NamespaceCommands {
    private final LinuxLikeDriver d;

    NamespaceCommands(LinuxLikeDriver d) {
        this.d = d;
    }

    private void toDataPage(byte[] data) {
        try {
            d.memory().write(d.dataPage(), data, 0, data.length);
        } catch (GuestMemoryException e) {
            throw new AssertionError(e);
        }
    }

    Completion create(long nsze, long ncap, int flbas, int dps, int nmic) {
        ByteBuffer s = ByteBuffer.allocate(4096).order(ByteOrder.LITTLE_ENDIAN);
        s.putLong(0, nsze).putLong(8, ncap).put(26, (byte) flbas).put(29, (byte) dps).put(30, (byte) nmic);
        toDataPage(s.array());
        return d.admin(Command.of(0x0D).cdw(10, 0).prp1(d.dataPage()));
    }

    /** Creates {@code blocks} of format {@code flbas} (0: 512 B, 1: 4096 B) and returns the NSID. */
    int create(long blocks, int flbas) {
        Completion c = create(blocks, blocks, flbas, 0, 0);
        if (!c.ok()) {
            throw new AssertionError("create-ns failed: " + c);
        }
        return c.dw0();
    }

    Completion delete(int nsid) {
        return d.admin(Command.of(0x0D).nsid(nsid).cdw(10, 1));
    }

    Completion attachment(int nsid, int sel, int count, int... cntlids) {
        ByteBuffer s = ByteBuffer.allocate(4096).order(ByteOrder.LITTLE_ENDIAN);
        s.putShort(0, (short) count);
        for (int i = 0; i < cntlids.length; i++) {
            s.putShort(2 + 2 * i, (short) cntlids[i]);
        }
        toDataPage(s.array());
        return d.admin(Command.of(0x15).nsid(nsid).cdw(10, sel).prp1(d.dataPage()));
    }

    Completion attach(int nsid) {
        return attachment(nsid, 0, 1, 1);
    }

    Completion detach(int nsid) {
        return attachment(nsid, 1, 1, 1);
    }

    /** Identify {@code cns} as a little-endian buffer. */
    ByteBuffer identify(int cns, int nsid) {
        return ByteBuffer.wrap(d.identify(cns, nsid)).order(ByteOrder.LITTLE_ENDIAN);
    }

    ByteBuffer identify(int cns, int nsid, int cntid) {
        Completion c = d.admin(Command.identify(cns, nsid, d.dataPage()).cdw(10, cns | cntid << 16));
        if (!c.ok()) {
            throw new AssertionError("identify CNS " + cns + " failed: " + c);
        }
        return ByteBuffer.wrap(d.readData(4096)).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** log2 of the current LBA size of active namespace {@code nsid}: LBADS of the format FLBAS names. */
    int lbads(int nsid) {
        ByteBuffer idns = identify(0x00, nsid);
        return (idns.getInt(128 + 4 * (idns.get(26) & 0x0F)) >>> 16) & 0xFF;
    }

    /** TNVMCAP (low 64 bits). */
    long tnvmcap() {
        return identify(0x01, 0).getLong(280);
    }

    /** UNVMCAP (low 64 bits). */
    long unvmcap() {
        return identify(0x01, 0).getLong(296);
    }

    /** A namespace list (CNS 02h or 10h) as NSIDs. */
    java.util.List<Integer> list(int cns) {
        ByteBuffer b = identify(cns, 0);
        java.util.List<Integer> out = new java.util.ArrayList<>();
        for (int i = 0; i < 1024 && b.getInt(4 * i) != 0; i++) {
            out.add(b.getInt(4 * i));
        }
        return out;
    }
}
