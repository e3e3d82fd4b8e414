package io.javadevices.nvme.control;

import io.javadevices.nvme.backend.BlockBackend;

import java.util.function.Supplier;

/**
 * The command line's namespace grammar ({@code ram:1G}, {@code null:8G}, {@code file:/img/b.raw[:SIZE][?direct=on]},
 * {@code nbd://...}, each optionally {@code @4096}), as the controller parses it for {@code --namespace}: the control
 * plane takes the same text and opens the same backends, so a namespace added at run time is exactly one the command
 * line could have named.
 */
@FunctionalInterface
public interface NamespaceGrammar {

    /**
     * Parses one namespace without opening it.
     *
     * @throws IllegalArgumentException with the grammar's own message if {@code text} is not one namespace
     */
    Parsed parse(String text);

    /**
     * One parsed namespace.
     *
     * @param kind     {@code ram}, {@code null}, {@code file} or {@code nbd}
     * @param location the file's path with its {@code ?direct=on}, the NBD URI; null for {@code ram} and {@code null}
     * @param size     bytes, 0 if the file's or the export's own size is taken
     * @param lbaSize  512 or 4096
     * @param open     opens (and for a file creates or grows) the backend; {@link IllegalArgumentException} with a
     *                 message for the operator if it cannot
     */
    record Parsed(String kind, String location, long size, int lbaSize, Supplier<BlockBackend> open) {
    }
}
