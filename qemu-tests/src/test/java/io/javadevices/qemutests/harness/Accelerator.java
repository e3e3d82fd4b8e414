package io.javadevices.qemutests.harness;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Which QEMU accelerator the guests use. KVM only when a quick probe boot under KVM reaches the guest's
 * init (nested KVM on some CI machines stops the guest with KVM_EXIT_INTERNAL_ERROR, reported by QEMU as
 * "emulation failure"); otherwise TCG. The choice is made once per JVM and logged.
 * {@code -Djavadevices.accel=tcg|kvm} forces one.
 */
public enum Accelerator {
    KVM("kvm", "host"),
    TCG("tcg", "max");

    private final String qemuName;
    private final String cpuModel;
    private static Accelerator chosen;

    Accelerator(String qemuName, String cpuModel) {
        this.qemuName = qemuName;
        this.cpuModel = cpuModel;
    }

    public String qemuName() {
        return qemuName;
    }

    public String cpuModel() {
        return cpuModel;
    }

    public static synchronized Accelerator choose() {
        if (chosen != null) {
            return chosen;
        }
        String forced = System.getProperty("javadevices.accel", "");
        if (!forced.isEmpty()) {
            chosen = Accelerator.valueOf(forced.toUpperCase());
            System.out.println("[harness] accelerator forced: " + chosen);
            return chosen;
        }
        chosen = TCG;
        if (Files.exists(Path.of("/dev/kvm"))) {
            chosen = KVM; // tentatively, for the probe itself
            boolean works = false;
            Path dir = null;
            try {
                dir = Files.createTempDirectory("kvm-probe");
                try (QemuGuest probe = new QemuGuest.Spec("kvm-probe", dir).cpus(1).memoryMiB(256)
                        .script("echo @@RESULT probe=ok\n").start()) {
                    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
                    while (System.nanoTime() < deadline && !works) {
                        String console = probe.console();
                        if (console.contains("KVM internal error") || console.contains("emulation failure")) {
                            break; // nested KVM on this machine cannot run the guest
                        }
                        works = console.contains("@@RESULT probe=ok");
                        Thread.sleep(100);
                    }
                }
            } catch (Exception e) {
                works = false;
            } finally {
                deleteProbeDirectory(dir);
            }
            chosen = works ? KVM : TCG;
        }
        System.out.println("[harness] accelerator: " + chosen
                + (chosen == TCG ? " (KVM absent or its probe boot failed)" : " (probe boot succeeded)"));
        return chosen;
    }

    /** The probe's directory holds only its script's cpio: nothing of it is left in the temporary directory. */
    private static void deleteProbeDirectory(Path dir) {
        if (dir == null) {
            return;
        }
        try (var files = Files.list(dir)) {
            for (Path file : files.toList()) {
                Files.deleteIfExists(file);
            }
            Files.deleteIfExists(dir);
        } catch (IOException e) {
            System.out.println("[harness] could not remove the KVM probe's directory " + dir + ": " + e);
        }
    }
}
