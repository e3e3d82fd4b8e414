package io.javadevices.nvme.nbd;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;

import java.io.ByteArrayOutputStream;
import java.util.HashMap;
import java.util.Map;
import java.util.function.ToIntFunction;

/**
 * The decisions one fuzz input makes, each named. Every choice's lowest value is the well-behaved one, so an
 * exhausted input (the provider then answers the minimum) is a correct session and the fuzzer only has to
 * spend bytes on the misbehaviour it tries. The names let {@link Encoder} write seed inputs by scenario.
 */
interface NbdFuzzChoices {
    /** A value in {@code [lo, hi]}; {@code what} names the decision (for seeds). */
    int range(String what, int lo, int hi);

    default boolean coin(String what) {
        return range(what, 0, 1) == 1;
    }

    /**
     * The input's bytes, decoded here rather than by the provider's own {@code consumeInt}: its byte layout is
     * native code that may change between Jazzer versions, and the seed inputs must keep meaning what their
     * names say. The layout is libFuzzer's {@code ConsumeIntegralInRange} (see {@link Encoder}).
     */
    static NbdFuzzChoices of(FuzzedDataProvider data) {
        byte[] input = data.consumeRemainingAsBytes();
        int[] remaining = {input.length};
        return (what, lo, hi) -> {
            long range = (long) hi - lo;
            long result = 0;
            for (int bytes = 0; bytes < 4 && (range >>> (8 * bytes)) > 0 && remaining[0] > 0; bytes++) {
                result = result << 8 | (input[--remaining[0]] & 0xFF);
            }
            return (int) (lo + result % (range + 1));
        };
    }

    /**
     * Writes the input bytes a {@link FuzzedDataProvider} decodes back into chosen answers: the scenario answers
     * each named decision (its {@code n}th occurrence as {@code name#n}); unanswered decisions take their lowest
     * value. The layout of libFuzzer's {@code ConsumeIntegralInRange}: an integer's bytes are taken from the END
     * of the input, most significant first, one byte per 8 bits of the range, then reduced modulo the range.
     */
    final class Encoder implements NbdFuzzChoices {
        private final ToIntFunction<String> scenario;
        private final Map<String, Integer> seen = new HashMap<>();
        private final ByteArrayOutputStream consumed = new ByteArrayOutputStream();

        /** @param scenario the answer offset from {@code lo} for {@code name#n}, or -1 for the lowest value */
        Encoder(ToIntFunction<String> scenario) {
            this.scenario = scenario;
        }

        static Encoder of(Map<String, Integer> answers) {
            return new Encoder(key -> {
                Integer v = answers.get(key);
                if (v == null) {
                    v = answers.get(key.substring(0, key.indexOf('#')));
                }
                return v == null ? -1 : v;
            });
        }

        @Override
        public int range(String what, int lo, int hi) {
            int n = seen.merge(what, 1, Integer::sum) - 1;
            int answer = scenario.applyAsInt(what + "#" + n);
            long value = answer < 0 ? 0 : Math.min(answer, (long) hi - lo);
            long range = (long) hi - lo;
            int bytes = 0;
            while (bytes < 4 && (range >>> (8 * bytes)) > 0) {
                bytes++;
            }
            for (int i = bytes - 1; i >= 0; i--) { // the first byte read (the input's last) is the most significant
                consumed.write((int) (value >>> (8 * i)));
            }
            return (int) (lo + value);
        }

        /** The input: what was consumed, reversed (the provider reads integers from the end backwards). */
        byte[] input() {
            byte[] forward = consumed.toByteArray();
            byte[] input = new byte[forward.length];
            for (int i = 0; i < forward.length; i++) {
                input[i] = forward[forward.length - 1 - i];
            }
            return input;
        }
    }
}
