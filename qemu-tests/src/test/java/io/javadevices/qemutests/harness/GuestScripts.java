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

    /**
     * Waits for the block device of namespace {@code nsid} (found through {@code /sys/block/nvme*n*\/nsid}:
     * Linux numbers the disks in the order its asynchronous scan creates them, not by NSID) and keeps its
     * path in the shell variable {@code ns<nsid>}; reports {@code present.ns<nsid>=yes|no}.
     */
    public static String waitForNamespace(int nsid, int seconds) {
        return """
                i=0; ns%1$d=""
                while [ -z "$ns%1$d" ] && [ $i -lt %2$d ]; do
                  for d in /sys/block/nvme*n*; do
                    if [ -f $d/nsid ] && [ "$(cat $d/nsid)" = %1$d ] && [ -b /dev/${d##*/} ]; then ns%1$d=/dev/${d##*/}; fi
                  done
                  if [ -z "$ns%1$d" ]; then sleep 0.2; i=$((i+1)); fi
                done
                if [ -n "$ns%1$d" ]; then echo "@@RESULT present.ns%1$d=yes"; else echo "@@RESULT present.ns%1$d=no"; dmesg | tail -20; fi
                """.formatted(nsid, seconds * 5);
    }

    /** Waits for a block device node to go away (a detached namespace); reports {@code gone.<name>=yes|no}. */
    public static String waitGone(String device, int seconds) {
        return """
                i=0
                while [ -b %1$s ] && [ $i -lt %2$d ]; do sleep 0.2; i=$((i+1)); done
                if [ -b %1$s ]; then echo "@@RESULT gone.%3$s=no"; else echo "@@RESULT gone.%3$s=yes"; fi
                """.formatted(device, seconds * 5, device.replace("/dev/", ""));
    }

    /**
     * Reports {@code key} = the value of {@code field} in the "field : value" lines nvme-cli prints (id-ctrl,
     * id-ns), without blanks or thousands separators, e.g. {@code 0x10a} or {@code 268435456}.
     */
    public static String nvmeField(String key, String command, String field) {
        return report(key, command + " 2>/dev/null | awk -F: '{gsub(/ /, \"\", $1)} $1 == \"" + field
                + "\" {gsub(/[ ,]/, \"\", $2); print $2; exit}'");
    }

    /** Runs a command, reports its exit code as {@code key.rc} and echoes its output (for the console log). */
    public static String run(String key, String command) {
        return "( " + command + " ) >/tmp/" + key + ".out 2>&1; echo \"@@RESULT " + key + ".rc=$?\"; sed 's/^/  " + key
                + "> /' /tmp/" + key + ".out | head -40\n";
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
     * Runs fio pass after pass ({@code fioArgs} should verify what it writes) until the shell condition
     * {@code stopWhen} holds after a pass, e.g. {@code [ -e /tmp/stop ]} or a {@code date} deadline. Each pass is
     * framed by {@code @@MARK <name>-pass-start N} / {@code @@MARK <name>-pass-done N}; a pass that exits non-zero
     * or counts errors is reported as {@code <name>.failure}; at the end {@code <name>.passes} and
     * {@code <name>.failed} (the number of failed passes). {@code name} must be a shell identifier.
     */
    public static String fioPasses(String name, String fioArgs, String stopWhen) {
        return """
                %1$s_pass=0; %1$s_failed=0
                while :; do
                  %1$s_pass=$((%1$s_pass+1))
                  echo "@@MARK %1$s-pass-start $%1$s_pass"
                  fio --name=%1$s %2$s --output-format=terse --terse-version=3 >/tmp/fio-%1$s.out 2>/tmp/fio-%1$s.err
                  %1$s_rc=$?; %1$s_err=$(awk -F';' '{e+=$5} END {print e+0}' /tmp/fio-%1$s.out)
                  if [ $%1$s_rc -ne 0 ] || [ "$%1$s_err" != 0 ]; then
                    %1$s_failed=$((%1$s_failed+1))
                    echo "@@RESULT %1$s.failure=pass $%1$s_pass rc $%1$s_rc errors $%1$s_err"; head -20 /tmp/fio-%1$s.err
                  fi
                  echo "@@MARK %1$s-pass-done $%1$s_pass ($(awk -F';' '{print "fio ran " $9 " ms reading, " $50 " ms writing"}' /tmp/fio-%1$s.out))"
                  if %3$s; then break; fi
                done
                echo "@@RESULT %1$s.passes=$%1$s_pass"
                echo "@@RESULT %1$s.failed=$%1$s_failed"
                """.formatted(name, fioArgs, stopWhen);
    }

    /**
     * The crash tests' writer: writes {@code mib} MiB of random data to the start of {@code /dev/nvme0n1} with
     * O_DIRECT and fsync (so it is flushed), reports {@code write.rc}, the pattern's {@code sum} (SHA-256) and
     * {@code flushed=yes}, then keeps random 64 KiB writes going from 16 MiB on until the guest is killed.
     */
    public static String flushedPatternThenEndlessWrites(int mib) {
        return waitFor("/dev/nvme0n1", 30) + """
                dd if=/dev/urandom of=/tmp/pattern bs=1M count=%1$d 2>/dev/null
                dd if=/tmp/pattern of=/dev/nvme0n1 bs=1M oflag=direct conv=fsync 2>/dev/null
                echo "@@RESULT write.rc=$?"
                echo "@@RESULT sum=$(sha256sum /tmp/pattern | cut -c1-64)"
                echo "@@RESULT flushed=yes"
                fio --name=endless --filename=/dev/nvme0n1 --offset=16M --size=48M --rw=randwrite --bs=64k \\
                    --ioengine=libaio --direct=1 --iodepth=32 --time_based --runtime=600 >/dev/null 2>&1
                """.formatted(mib);
    }

    /** Reports {@code key} = SHA-256 of the first {@code mib} MiB of {@code /dev/nvme0n1}, read with O_DIRECT. */
    public static String checksumOfStart(String key, int mib) {
        return report(key, "dd if=/dev/nvme0n1 bs=1M count=" + mib + " iflag=direct 2>/dev/null | sha256sum | cut -c1-64");
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
