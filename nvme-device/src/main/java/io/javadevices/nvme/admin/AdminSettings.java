package io.javadevices.nvme.admin;

/**
 * The controller options the admin command set reads (Identify, Create I/O Queue, which commands exist),
 * taken from the device options when the controller is built so that admin/ does not depend on the
 * option parser.
 *
 * @param serial Identify Controller SN (ASCII, ≤ 20)
 * @param model  Identify Controller MN (ASCII, ≤ 40)
 * @param mqes   CAP.MQES: largest queue size accepted, 0-based
 * @param mdts   Identify Controller MDTS (log2 of CAP.MPSMIN pages)
 * @param dbbuf  Doorbell Buffer Config offered (OACS bit 8)
 */
public record AdminSettings(String serial, String model, int mqes, int mdts, boolean dbbuf) {
}
