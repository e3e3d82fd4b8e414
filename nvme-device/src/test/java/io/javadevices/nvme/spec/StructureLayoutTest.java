package io.javadevices.nvme.spec;

import io.javadevices.nvme.spec.Nvme;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemoryLayout.PathElement;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Each NVMe structure's size and a handful of its field offsets, against the byte offsets printed in the NVMe 1.4
 * tables (the literals below are read from the spec, never computed from the layouts), so a field declared with the
 * wrong width shifts everything after it and fails here.
 */
class StructureLayoutTest {

    private static long at(StructLayout layout, String name) {
        return layout.byteOffset(PathElement.groupElement(name));
    }

    @Test
    void identifyControllerFieldsSitAtTheFigure247Offsets() {
        assertEquals(4096, IdCtrl.LAYOUT.byteSize());
        assertEquals(0, IdCtrl.VID.offset());
        assertEquals(2, IdCtrl.SSVID.offset());
        assertEquals(4, IdCtrl.SN.offset());
        assertEquals(20, IdCtrl.SN.length());
        assertEquals(24, IdCtrl.MN.offset());
        assertEquals(40, IdCtrl.MN.length());
        assertEquals(64, IdCtrl.FR.offset());
        assertEquals(72, IdCtrl.RAB.offset());
        assertEquals(73, IdCtrl.IEEE.offset());
        assertEquals(77, IdCtrl.MDTS.offset());
        assertEquals(78, IdCtrl.CNTLID.offset());
        assertEquals(80, IdCtrl.VER.offset());
        assertEquals(92, IdCtrl.OAES.offset());
        assertEquals(111, IdCtrl.CNTRLTYPE.offset());
        assertEquals(112, at(IdCtrl.LAYOUT, "FGUID"));
        assertEquals(256, IdCtrl.OACS.offset());
        assertEquals(259, IdCtrl.AERL.offset());
        assertEquals(261, IdCtrl.LPA.offset());
        assertEquals(263, IdCtrl.NPSS.offset());
        assertEquals(266, IdCtrl.WCTEMP.offset());
        assertEquals(268, IdCtrl.CCTEMP.offset());
        assertEquals(280, at(IdCtrl.LAYOUT, "TNVMCAP"));
        assertEquals(320, at(IdCtrl.LAYOUT, "KAS"));
        assertEquals(352, at(IdCtrl.LAYOUT, "PELS"));
        assertEquals(512, IdCtrl.SQES.offset());
        assertEquals(513, IdCtrl.CQES.offset());
        assertEquals(514, at(IdCtrl.LAYOUT, "MAXCMD"));
        assertEquals(516, IdCtrl.NN.offset());
        assertEquals(520, IdCtrl.ONCS.offset());
        assertEquals(525, IdCtrl.VWC.offset());
        assertEquals(536, IdCtrl.SGLS.offset());
        assertEquals(540, at(IdCtrl.LAYOUT, "MNAN"));
        assertEquals(768, IdCtrl.SUBNQN.offset());
        assertEquals(256, IdCtrl.SUBNQN.length());
        assertEquals(2048, IdCtrl.PSD0_MP.offset());
        assertEquals(3072, at(IdCtrl.LAYOUT, "VS"));
    }

    @Test
    void powerStateDescriptorFieldsSitAtTheSpecOffsets() {
        StructLayout l = PowerStateDescriptor.LAYOUT;
        assertEquals(32, l.byteSize());
        assertEquals(0, at(l, "MP"));
        assertEquals(3, at(l, "FLAGS"));
        assertEquals(4, at(l, "ENLAT"));
        assertEquals(8, at(l, "EXLAT"));
        assertEquals(12, at(l, "RRT"));
        assertEquals(15, at(l, "RWL"));
        assertEquals(16, at(l, "IDLP"));
        assertEquals(18, at(l, "IPS"));
        assertEquals(20, at(l, "ACTP"));
        assertEquals(22, at(l, "APW_APS"));
    }

    @Test
    void identifyNamespaceAndLbaFormatFieldsSitAtTheSpecOffsets() {
        assertEquals(4096, IdNs.LAYOUT.byteSize());
        assertEquals(0, IdNs.NSZE.offset());
        assertEquals(8, IdNs.NCAP.offset());
        assertEquals(16, IdNs.NUSE.offset());
        assertEquals(24, at(IdNs.LAYOUT, "NSFEAT"));
        assertEquals(25, IdNs.NLBAF.offset());
        assertEquals(26, IdNs.FLBAS.offset());
        assertEquals(33, IdNs.DLFEAT.offset());
        assertEquals(48, at(IdNs.LAYOUT, "NVMCAP"));
        assertEquals(72, at(IdNs.LAYOUT, "NOWS"));
        assertEquals(92, at(IdNs.LAYOUT, "ANAGRPID"));
        assertEquals(99, at(IdNs.LAYOUT, "NSATTR"));
        assertEquals(100, at(IdNs.LAYOUT, "NVMSETID"));
        assertEquals(102, at(IdNs.LAYOUT, "ENDGID"));
        assertEquals(104, IdNs.NGUID.offset());
        assertEquals(16, IdNs.NGUID.length());
        assertEquals(120, IdNs.EUI64.offset());
        assertEquals(8, IdNs.EUI64.length());
        assertEquals(128, IdNs.lbaf(0));
        assertEquals(188, IdNs.lbaf(15));
        assertEquals(384, at(IdNs.LAYOUT, "VS"));
        assertEquals(4, LbaFormat.LAYOUT.byteSize());
        assertEquals(0, LbaFormat.MS.offset());
        assertEquals(2, LbaFormat.LBADS.offset());
        assertEquals(3, LbaFormat.RP.offset());
    }

    @Test
    void smartLogFieldsSitAtTheSpecOffsets() {
        assertEquals(512, SmartLog.LAYOUT.byteSize());
        assertEquals(0, SmartLog.CW.offset());
        assertEquals(1, SmartLog.CTEMP.offset());
        assertEquals(3, SmartLog.AVSP.offset());
        assertEquals(4, SmartLog.AVSPT.offset());
        assertEquals(5, at(SmartLog.LAYOUT, "PUSED"));
        assertEquals(32, SmartLog.DUR_LOW.offset());
        assertEquals(48, SmartLog.DUW_LOW.offset());
        assertEquals(64, SmartLog.HRC_LOW.offset());
        assertEquals(80, SmartLog.HWC_LOW.offset());
        assertEquals(96, at(SmartLog.LAYOUT, "CBT"));
        assertEquals(112, SmartLog.PWRC_LOW.offset());
        assertEquals(144, at(SmartLog.LAYOUT, "UNSAFE"));
        assertEquals(176, SmartLog.NUMERR_LOW.offset());
        assertEquals(192, at(SmartLog.LAYOUT, "WCTT"));
        assertEquals(200, at(SmartLog.LAYOUT, "TS"));
        assertEquals(216, at(SmartLog.LAYOUT, "TMT1TC"));
        assertEquals(228, at(SmartLog.LAYOUT, "TTTMT2"));
    }

    @Test
    void errorLogEntryFieldsSitAtTheSpecOffsets() {
        assertEquals(64, ErrorLogEntry.LAYOUT.byteSize());
        assertEquals(0, ErrorLogEntry.ERRCNT.offset());
        assertEquals(8, ErrorLogEntry.SQID.offset());
        assertEquals(10, ErrorLogEntry.CID.offset());
        assertEquals(12, ErrorLogEntry.STATUS.offset());
        assertEquals(14, ErrorLogEntry.PEL.offset());
        assertEquals(16, ErrorLogEntry.LBA.offset());
        assertEquals(24, ErrorLogEntry.NSID.offset());
        assertEquals(28, at(ErrorLogEntry.LAYOUT, "VSIA"));
        assertEquals(29, at(ErrorLogEntry.LAYOUT, "TRTYPE"));
        assertEquals(32, at(ErrorLogEntry.LAYOUT, "CSI"));
        assertEquals(40, at(ErrorLogEntry.LAYOUT, "TTSI"));
    }

    @Test
    void firmwareSlotAndEffectsLogFieldsSitAtTheSpecOffsets() {
        assertEquals(512, FirmwareSlotLog.LAYOUT.byteSize());
        assertEquals(0, FirmwareSlotLog.AFI.offset());
        assertEquals(8, FirmwareSlotLog.FRS1.offset());
        assertEquals(8, FirmwareSlotLog.FRS1.length());
        assertEquals(4096, EffectsLog.LAYOUT.byteSize());
        MemorySegment page = MemorySegment.ofArray(new byte[4096]);
        EffectsLog.admin(page, 0x7C, EffectsLog.CSUPP);                  // ACS entry 7Ch: byte 496
        EffectsLog.io(page, 0x09, EffectsLog.CSUPP | EffectsLog.LBCC);   // IOCS entry 09h: byte 1024 + 36
        assertEquals(1, page.get(ValueLayout.JAVA_BYTE, 496));
        assertEquals(3, page.get(ValueLayout.JAVA_BYTE, 1060));
    }

    @Test
    void queueEntryFieldsSitAtTheFigure105And124Offsets() {
        assertEquals(64, SqeLayout.LAYOUT.byteSize());
        assertEquals(0, SqeLayout.OPC);
        assertEquals(1, SqeLayout.FLAGS);
        assertEquals(2, SqeLayout.CID);
        assertEquals(4, SqeLayout.NSID);
        assertEquals(16, SqeLayout.MPTR);
        assertEquals(24, SqeLayout.PRP1);
        assertEquals(32, SqeLayout.PRP2);
        assertEquals(40, SqeLayout.CDW10);
        assertEquals(48, SqeLayout.CDW12);
        assertEquals(60, SqeLayout.CDW15);
        assertEquals(1 << Nvme.SQES_LOG2, SqeLayout.SIZE, "CC.IOSQES / Identify SQES");
        assertEquals(16, CqeLayout.LAYOUT.byteSize());
        assertEquals(1 << Nvme.CQES_LOG2, CqeLayout.SIZE, "CC.IOCQES / Identify CQES");
        assertEquals(0, CqeLayout.DW0);
        assertEquals(8, CqeLayout.SQHD);
        assertEquals(10, CqeLayout.SQID);
        assertEquals(12, CqeLayout.CID);
        assertEquals(14, CqeLayout.STATUS);
    }

    @Test
    void fieldsAreLittleEndianAndStringsPadded() {
        byte[] bytes = new byte[4096];
        MemorySegment page = MemorySegment.ofArray(bytes);
        IdCtrl.WCTEMP.set(page, (short) 0x157);
        assertEquals(0x57, bytes[266]);
        assertEquals(0x01, bytes[267]);
        assertEquals(0x157, IdCtrl.WCTEMP.get(page));
        IdCtrl.FR.ascii(page, "1.0");
        assertArrayEquals(new byte[] {'1', '.', '0', ' ', ' ', ' ', ' ', ' '}, java.util.Arrays.copyOfRange(bytes, 64, 72));
        IdCtrl.SN.ascii(page, "X".repeat(30));                        // cut at the field's end, never past it
        assertEquals('X', bytes[23]);
        assertEquals(0, bytes[24]);
    }

    @Test
    void aStructureThatDoesNotAddUpFailsItsSizeCheck() {
        // The same check every structure above runs at class initialisation (QEMU's _nvme_check_size()).
        assertThrows(IllegalStateException.class, () -> Fields.struct("Short", 16, Fields.u32("A"), Fields.u64("B")));
        assertThrows(IllegalStateException.class, () -> Fields.u32(LbaFormat.LAYOUT, "MS")); // MS is 16-bit
        assertThrows(IllegalArgumentException.class, () -> Fields.u8(LbaFormat.LAYOUT, "NOPE"));
    }
}
