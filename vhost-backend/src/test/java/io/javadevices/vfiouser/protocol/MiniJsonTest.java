package io.javadevices.vfiouser.protocol;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The VERSION capabilities parser follows RFC 8259 where the fuzzer found it lenient (numbers, \\u escapes). */
class MiniJsonTest {
    @ParameterizedTest
    @ValueSource(strings = {"{\"a\":\"\\u+041\"}", "{\"a\":\"\\u-001\"}", "{\"a\":\"\\u00g1\"}", "{\"a\":01}",
            "{\"a\":1.}", "{\"a\":-01.e5}", "{\"a\":-.5}", "{\"a\":1e}", "{\"a\":1.5.5}", "{\"a\":--1}"})
    void numbersAndEscapesOutsideTheGrammarAreRefused(String json) {
        assertThrows(IllegalArgumentException.class, () -> MiniJson.parse(json), json);
    }

    @Test
    void numbersAndEscapesOfTheGrammarAreRead() {
        Object parsed = MiniJson.parse("{\"z\":0,\"n\":-0,\"e\":1.5e+3,\"f\":-2E-2,\"i\":4096,\"s\":\"\\u0041\\u00e9\"}");
        Map<?, ?> m = (Map<?, ?>) parsed;
        assertEquals(0L, m.get("z"));
        assertEquals(1500.0, m.get("e"));
        assertEquals(-0.02, m.get("f"));
        assertEquals(4096L, m.get("i"));
        assertEquals("Aé", m.get("s"));
    }
}
