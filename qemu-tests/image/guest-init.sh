#!/bin/sh
# /init of the test guest's initramfs (busybox). Loads the NVMe and ext4 modules, runs /test.sh if the
# harness appended one (a second cpio archive concatenated to the initrd), reports its exit code and
# powers off so that QEMU (started with -no-reboot) exits.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp /mnt /dev/pts && mount -t tmpfs tmpfs /tmp
for m in $(cat /etc/guest-modules); do
  insmod "/lib/modules/$m" || echo "@@INIT insmod $m failed"
done
echo "@@GUEST-READY"
if [ -f /test.sh ]; then
  sh /test.sh
  echo "@@TEST-EXIT $?"
fi
sync
poweroff -f
sleep 5
echo o > /proc/sysrq-trigger
