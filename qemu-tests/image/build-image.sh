#!/usr/bin/env bash
# Builds the local Docker image used by the QEMU end-to-end tests, from Debian packages only:
#   - a Debian trixie root filesystem (debootstrap) with QEMU 11.1 from trixie-backports (vfio-user-pci);
#   - /guest/vmlinuz: trixie's 6.12 kernel; /guest/initrd.img: a busybox initramfs with the nvme and ext4
#     modules, fio, nvme-cli and e2fsprogs, whose /init is guest-init.sh.
# The image is tagged javadevices-qemu:<hash of this script and guest-init.sh> and reused while those
# inputs do not change; build artefacts are cached under ${XDG_CACHE_HOME:-~/.cache}/javadevices.
# Mirrors come from this machine's own apt configuration. Never pulls from a container registry.
# Prints progress on stderr and the image tag alone on the last stdout line.
#   --print-tag   print the tag that would be used and exit
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
start=$(date +%s)
log() { echo "[build-image +$(( $(date +%s) - start ))s] $*" >&2; }

hash=$(cat "$here/build-image.sh" "$here/guest-init.sh" | sha256sum | cut -c1-12)
tag="javadevices-qemu:$hash"
if [ "${1:-}" = "--print-tag" ]; then echo "$tag"; exit 0; fi

if ! docker info >/dev/null 2>&1; then
  echo "error: no Docker engine answers; run qemu-tests/image/setup-host.sh (as root) first" >&2
  exit 1
fi
if docker image inspect "$tag" >/dev/null 2>&1; then
  log "image $tag is up to date"
  echo "$tag"
  exit 0
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/javadevices/$hash"
mkdir -p "$cache"
if [ ! -f "$cache/rootfs.tar" ]; then
  [ "$(id -u)" = 0 ] || { echo "error: building the guest image needs root (debootstrap, chroot)" >&2; exit 1; }
  for tool in debootstrap cpio xz zstd; do
    command -v "$tool" >/dev/null || { echo "error: $tool missing; run qemu-tests/image/setup-host.sh" >&2; exit 1; }
  done
  # The mirror is whatever this machine's apt uses (deb822 sources first, then sources.list).
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  if [ -z "$mirror" ]; then
    mirror=$(awk '$1=="deb"{for(i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; exit}}' /etc/apt/sources.list 2>/dev/null || true)
  fi
  [ -n "$mirror" ] || { echo "error: no Debian mirror found in the apt configuration" >&2; exit 1; }

  work=$(mktemp -d /var/tmp/javadevices-image.XXXXXX)
  root="$work/rootfs"
  cleanup() {
    for m in dev/pts dev sys proc; do umount -l "$root/$m" 2>/dev/null || true; done
    rm -rf "$work"
  }
  trap cleanup EXIT

  log "debootstrap trixie (minbase)"
  debootstrap --variant=minbase trixie "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -30 "$work/debootstrap.log" >&2; exit 1; }
  echo "deb $mirror trixie-backports main" > "$root/etc/apt/sources.list.d/backports.list"
  for m in proc sys dev dev/pts; do mkdir -p "$root/$m"; mount --bind "/$m" "$root/$m"; done
  log "installing QEMU (trixie-backports), the kernel, fio, nvme-cli, e2fsprogs, busybox"
  chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive bash -c '
      set -e
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends -t trixie-backports qemu-system-x86
      apt-get install -y -qq --no-install-recommends linux-image-amd64 fio busybox-static kmod nvme-cli e2fsprogs xz-utils zstd
  ' >"$work/apt.log" 2>&1 || { tail -30 "$work/apt.log" >&2; exit 1; }

  log "building the guest initramfs"
  kver=$(ls "$root/lib/modules" | sort -V | tail -1)
  init="$work/initramfs"
  mkdir -p "$init"/{bin,sbin,etc,proc,sys,dev,tmp,mnt,usr/bin,usr/sbin,lib/modules}
  cp "$root/bin/busybox" "$init/bin/busybox"
  for applet in $(chroot "$root" /bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf /bin/busybox "$init/bin/$applet"
  done
  # Modules in dependency order (modules.dep lists each module's whole closure).
  declare -A seen=()
  order=()
  visit() {
    local mod="$1" dep
    [ -n "${seen[$mod]:-}" ] && return
    seen[$mod]=1
    for dep in $(awk -F': *' -v m="$mod" '$1==m {print $2}' "$root/lib/modules/$kver/modules.dep"); do visit "$dep"; done
    order+=("$mod")
  }
  # ext4 asks the crypto API for "crc32c" at mount time (a soft dependency modules.dep does not list).
  # virtio_blk: the benchmark compares with QEMU's virtio-blk.
  for want in nvme ext4 crc32c_generic crc32c-intel virtio_pci virtio_blk; do
    pattern="$(echo "$want" | sed 's/[-_]/[-_]/g')"
    path=$(grep -E "(^|/)$pattern\.ko(\.[a-z]+)?:" "$root/lib/modules/$kver/modules.dep" | head -1 | cut -d: -f1 || true)
    if [ -z "$path" ]; then
      if grep -qE "/$pattern\.ko" "$root/lib/modules/$kver/modules.builtin"; then continue; fi
      case "$want" in nvme|ext4) echo "error: module $want not found" >&2; exit 1 ;; esac
      log "optional module $want not found"
      continue
    fi
    visit "$path"
  done
  : > "$init/etc/guest-modules"
  for mod in "${order[@]}"; do
    plain="$(basename "$mod" | sed -E 's/\.(xz|zst|gz)$//')"
    case "$mod" in
      *.xz) xz -dc "$root/lib/modules/$kver/$mod" > "$init/lib/modules/$plain" ;;
      *.zst) zstd -qdc "$root/lib/modules/$kver/$mod" > "$init/lib/modules/$plain" ;;
      *.gz) gzip -dc "$root/lib/modules/$kver/$mod" > "$init/lib/modules/$plain" ;;
      *) cp "$root/lib/modules/$kver/$mod" "$init/lib/modules/$plain" ;;
    esac
    echo "$plain" >> "$init/etc/guest-modules"
  done
  log "guest modules: $(tr '\n' ' ' < "$init/etc/guest-modules")"
  # Programs with every shared library ldd lists (run inside the chroot, so paths are the rootfs').
  progs="/usr/bin/fio /usr/sbin/nvme /usr/sbin/mke2fs /usr/sbin/e2fsck"
  for p in $progs; do
    [ -e "$root$p" ] || p="$(chroot "$root" sh -c "command -v $(basename "$p")")"
    mkdir -p "$init$(dirname "$p")"
    cp -L "$root$p" "$init$p"
    for lib in $(chroot "$root" ldd "$p" | grep -oE '/[^ ]+' | sort -u); do
      mkdir -p "$init$(dirname "$lib")"
      cp -L "$root$lib" "$init$lib"
    done
  done
  ln -sf /usr/sbin/mke2fs "$init/usr/sbin/mkfs.ext4"
  [ -f "$root/etc/mke2fs.conf" ] && cp "$root/etc/mke2fs.conf" "$init/etc/"
  [ -e "$init/lib64" ] || ln -s usr/lib64 "$init/lib64" 2>/dev/null || true
  cp "$here/guest-init.sh" "$init/init"
  chmod 755 "$init/init"
  mkdir -p "$root/guest"
  (cd "$init" && find . | cpio -o -H newc --quiet | gzip -1) > "$root/guest/initrd.img"
  # The harness appends an uncompressed cpio with /test.sh; the kernel only finds it at a 4-byte aligned
  # offset after the gzip member (zero padding is skipped), so pad to a 512-byte multiple.
  truncate -s %512 "$root/guest/initrd.img"
  cp "$root/boot/vmlinuz-$kver" "$root/guest/vmlinuz"
  echo "$kver" > "$root/guest/kernel-version"
  log "initramfs $(du -h "$root/guest/initrd.img" | cut -f1), kernel $kver"

  for m in dev/pts dev sys proc; do umount -l "$root/$m"; done
  # The container needs QEMU, not the kernel's modules or apt's caches.
  rm -rf "$root/lib/modules" "$root/usr/lib/modules" "$root/var/cache/apt"/* "$root/var/lib/apt/lists"/* \
         "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/locale"
  log "packing the root filesystem"
  tar -C "$root" -cf "$cache/rootfs.tar.tmp" .
  mv "$cache/rootfs.tar.tmp" "$cache/rootfs.tar"
fi

log "importing $tag"
docker import "$cache/rootfs.tar" "$tag" >/dev/null
docker tag "$tag" javadevices-qemu:latest
# Older builds are dropped from the cache.
find "$(dirname "$cache")" -mindepth 1 -maxdepth 1 -type d ! -name "$hash" -exec rm -rf {} + 2>/dev/null || true
log "done"
echo "$tag"
