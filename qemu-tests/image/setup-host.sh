#!/usr/bin/env bash
# Prepares a Debian 12 host for the QEMU end-to-end tests: installs docker.io, debootstrap and cpio when
# missing and starts dockerd when no engine answers. Idempotent; needs root. Never pulls images.
set -euo pipefail
log() { echo "[setup-host] $*" >&2; }

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v cpio >/dev/null 2>&1 || need+=(cpio)
command -v zstd >/dev/null 2>&1 || need+=(zstd)
command -v xz >/dev/null 2>&1 || need+=(xz-utils)
# The NBD backend's tests need real NBD servers: qemu-nbd / qemu-img (qcow2 images) and nbdkit (its memory
# plugin and delay filter).
command -v qemu-nbd >/dev/null 2>&1 || need+=(qemu-utils)
command -v nbdkit >/dev/null 2>&1 || need+=(nbdkit)
# Socket activation tests (vhost-backend CleanShutdownProcessTest, SocketActivationIT) start the server through
# systemd-socket-activate, which Debian ships in the systemd package (absent from minimal images and containers).
command -v systemd-socket-activate >/dev/null 2>&1 || need+=(systemd)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then log "need root to install: ${need[*]}"; exit 1; fi
  log "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if docker info >/dev/null 2>&1; then
  log "docker engine is running"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then log "no docker engine and not root: start dockerd yourself"; exit 1; fi
log "starting dockerd"
mkdir -p /var/log
nohup dockerd >/var/log/javadevices-dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then log "docker engine is up"; exit 0; fi
  sleep 1
done
log "dockerd did not come up in 60 s; last log lines:"
tail -20 /var/log/javadevices-dockerd.log >&2 || true
exit 1
