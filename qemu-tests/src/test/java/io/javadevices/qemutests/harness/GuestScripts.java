package io.javadevices.qemutests.harness;

/**
 * Building blocks of the guest-side test scripts (busybox sh). Each script reports with
 * {@code @@RESULT key=value} lines that the harness parses; the image's init prints
 * {@code @@TEST-EXIT rc} after the script and powers the guest off.
 */
public final class GuestScripts {
    private GuestScripts() {
    }

    /** Waits for a block device node to appear (the driver probes asynchronously). */
    public static String waitFor(String device, int seconds) {
        return """
                i=0
                while [ ! -b %1$s ] && [ $i -lt %2$d ]; do sleep 0.2; i=$((i+1)); done
                if [ -b %1$s ]; then echo "@@RESULT present.%3$s=yes"; else echo "@@RESULT present.%3$s=no"; dmesg | tail -40; fi
                """.formatted(device, seconds * 5, device.replace("/dev/", ""));
    }

    /** Reports a value computed by a shell expression. */
    public static String report(String key, String shellExpression) {
        return "echo \"@@RESULT " + key + "=$(" + shellExpression + ")\"\n";
    }

    /**
     * Runs fio and reports its exit code, error count and issued I/O counts:
     * {@code fio.<name>.rc}, {@code fio.<name>.err}, {@code fio.<name>.reads}, {@code fio.<name>.writes},
     * {@code fio.<name>.iops} (read IOPS), {@code fio.<name>.wiops} (write IOPS).
     */
    public static String fio(String name, String args) {
        return """
                fio --name=%1$s %2$s --output-format=terse --terse-version=3 > /tmp/fio-%1$s.out 2>/tmp/fio-%1$s.err
                rc=$?
                echo "@@RESULT fio.%1$s.rc=$rc"
                cat /tmp/fio-%1$s.err | head -20
                # terse v3: 5 error, 6 read kB, 8 read iops, 47 write kB, 49 write iops; I/O counts from kB/bs are
                # not exact with mixed sizes, so report the totals fio measured in kB too.
                awk -F';' '{err+=$5; rkb+=$6; riops+=$8; wkb+=$47; wiops+=$49}
                  END {printf "@@RESULT fio.%1$s.err=%%d\\n@@RESULT fio.%1$s.readkb=%%d\\n@@RESULT fio.%1$s.iops=%%d\\n@@RESULT fio.%1$s.writekb=%%d\\n@@RESULT fio.%1$s.wiops=%%d\\n", err, rkb, riops, wkb, wiops}' /tmp/fio-%1$s.out
                """.formatted(name, args);
    }

    /**
     * Prints {@code @@CHECKPOINT name} and pauses, so that the test can read the server's counters while
     * the guest's driver still holds its queues (they are gone once the guest powers off). Pair with
     * {@link QemuGuest#awaitCheckpoint}.
     */
    public static String checkpoint(String name) {
        return "echo \"@@CHECKPOINT " + name + "\"\nsleep 5\n";
    }

    /** Loads nothing, just reports the kernel and CPU count (sanity for every boot). */
    public static String header() {
        return report("kernel", "uname -r") + report("cpus", "grep -c ^processor /proc/cpuinfo");
    }
}
