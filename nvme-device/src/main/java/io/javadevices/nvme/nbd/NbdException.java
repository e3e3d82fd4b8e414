package io.javadevices.nvme.nbd;

import java.io.IOException;

/** The server refused or broke the protocol: the message says what, in terms a user can act on. */
final class NbdException extends IOException {
    NbdException(String message) {
        super(message);
    }
}
