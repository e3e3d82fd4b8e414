package io.javadevices.pci;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class ByteSizesTest {
    @Test
    void suffixesArePowersOf1024() {
        assertEquals(4096, ByteSizes.parse("4096"));
        assertEquals(512L << 10, ByteSizes.parse("512K"));
        assertEquals(64L << 20, ByteSizes.parse("64M"));
        assertEquals(64L << 20, ByteSizes.parse("64MiB"));
        assertEquals(64L << 20, ByteSizes.parse("64mb"));
        assertEquals(8L << 30, ByteSizes.parse(" 8G "));
        assertEquals(1L << 40, ByteSizes.parse("1T"));
        assertEquals(0, ByteSizes.parse("0"), "0 parses; callers decide whether it is allowed");
    }

    @Test
    void rejectsWhatIsNotASize() {
        for (String bad : new String[] {"", "M", "-1", "1.5G", "12X", "1GG", "0x10", "99999999999999999999"}) {
            assertThrows(IllegalArgumentException.class, () -> ByteSizes.parse(bad), bad);
        }
        assertThrows(IllegalArgumentException.class, () -> ByteSizes.parse("9000000000T"), "overflow");
    }
}
