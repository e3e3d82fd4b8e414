package io.javadevices.nvme.driver;

/** A completion queue entry as the host reads it (NVMe 1.4 Figure 124); {@code status} is the 15-bit field. */
public record Completion(int dw0, int sqHead, int sqid, int cid, int status) {
    public int sc() {
        return status & 0xFF;
    }

    public int sct() {
        return (status >>> 8) & 7;
    }

    public boolean ok() {
        return (status & 0x7FF) == 0;
    }

    @Override
    public String toString() {
        return String.format("CQE{sqid=%d cid=%d sct=%d sc=0x%02x dw0=0x%x sqhd=%d}", sqid, cid, sct(), sc(), dw0, sqHead);
    }
}
