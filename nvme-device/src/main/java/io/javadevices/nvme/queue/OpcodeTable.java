package io.javadevices.nvme.queue;

import io.javadevices.nvme.spec.Status;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.function.Predicate;

/**
 * The commands of one command set (QEMU hw/nvme nvme_cse_acs / nvme_cse_iocs_nvm): each opcode with its
 * Commands Supported and Effects bits (NVMe 1.4 Figure 198), the option that enables it if any, the
 * Identify Controller capability bit it sets (OACS for admin, ONCS for NVM) and its handler. The one table
 * gates dispatch and produces the effects log and the capability field, so a command cannot be executable
 * without being advertised, nor the other way round.
 *
 * <p>Tables are immutable; {@link #enabled} derives the table of one controller from its options. Lookup
 * is an array index and the handlers are non-capturing lambdas: nothing is allocated per command.
 *
 * @param <H> the command set's handler object, passed to each operation
 */
public final class OpcodeTable<H> {
    /** Commands Supported and Effects (Figure 198): command supported, LBA content, namespace capability, namespace inventory, controller capability change. */
    public static final int CSUPP = 1, LBCC = 1 << 1, NCC = 1 << 2, NIC = 1 << 3, CCC = 1 << 4;
    /** Effects bits 18:16 CSE: 001b no other command to the same namespace may run meanwhile, 010b no other command at all. */
    public static final int CSE_NAMESPACE = 1 << 16, CSE_ANY = 2 << 16;

    /** The one handler signature: returns {@link CommandHandler#result} or {@link CommandHandler#DEFERRED}. */
    @FunctionalInterface
    public interface Operation<H> {
        long execute(H handler, Sqe cmd, QueueWorker worker);
    }

    /**
     * @param option     the option that must be on for the command to exist (e.g. {@code dbbuf}), or null
     * @param capability the Identify Controller bit this command stands for (OACS / ONCS), or 0
     */
    public record Entry<H>(int opcode, String name, int effects, String option, int capability, Operation<H> operation) {
    }

    private final List<Entry<H>> entries;
    private final Entry<H>[] byOpcode;

    @SuppressWarnings("unchecked")
    private OpcodeTable(List<Entry<H>> entries) {
        this.entries = Collections.unmodifiableList(new ArrayList<>(entries));
        this.byOpcode = (Entry<H>[]) new Entry<?>[256];
        for (Entry<H> e : entries) {
            if (e.opcode() < 0 || e.opcode() > 255 || byOpcode[e.opcode()] != null) {
                throw new IllegalArgumentException("opcode " + e.opcode() + " (" + e.name() + ") twice or out of range");
            }
            byOpcode[e.opcode()] = e;
        }
    }

    public static <H> Builder<H> builder() {
        return new Builder<>();
    }

    /** The entries whose option is null or accepted by {@code optionOn}. */
    public OpcodeTable<H> enabled(Predicate<String> optionOn) {
        return new OpcodeTable<>(entries.stream().filter(e -> e.option() == null || optionOn.test(e.option())).toList());
    }

    public List<Entry<H>> entries() {
        return entries;
    }

    public boolean supports(int opcode) {
        return byOpcode[opcode & 0xFF] != null;
    }

    /** The Commands Supported and Effects entry of {@code opcode}: 0 if not supported. */
    public int effects(int opcode) {
        Entry<H> e = byOpcode[opcode & 0xFF];
        return e == null ? 0 : e.effects();
    }

    /** The OR of the capability bits of the supported commands (OACS or ONCS). */
    public int capabilities() {
        int bits = 0;
        for (Entry<H> e : entries) {
            bits |= e.capability();
        }
        return bits;
    }

    /** Runs the command's handler; an opcode not in the table is Invalid Command Opcode (§4.6.1.2.1). */
    public long execute(H handler, Sqe cmd, QueueWorker worker) {
        Entry<H> e = byOpcode[cmd.opcode() & 0xFF];
        return e == null ? CommandHandler.result(Status.INVALID_OPCODE) : e.operation().execute(handler, cmd, worker);
    }

    public static final class Builder<H> {
        private final List<Entry<H>> entries = new ArrayList<>();

        public Builder<H> add(int opcode, String name, int effects, Operation<H> operation) {
            return add(opcode, name, effects, null, 0, operation);
        }

        public Builder<H> add(int opcode, String name, int effects, String option, int capability, Operation<H> operation) {
            entries.add(new Entry<>(opcode, name, effects | CSUPP, option, capability, operation));
            return this;
        }

        public OpcodeTable<H> build() {
            return new OpcodeTable<>(entries);
        }
    }
}
