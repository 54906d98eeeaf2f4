#!/usr/bin/env bash
# A Docker engine with compose v2 and buildx on a Debian 12 box without Docker's own repositories (what
# .ci/run uses; docs/deployment.md, the CPU and air-gapped paths). Needs root and apt-get.
# - from Debian 12 by apt: what the engine runs on (containerd, runc, iptables, tini) and debootstrap (for
#   docker/local-base.sh);
# - the engine: Debian 13's docker.io (26.1; its dockerd, docker-proxy and docker-init need only glibc
#   2.34+) unpacked into /usr/local/lib/sched-rl-docker. Debian 12's own docker.io is 20.10, whose BuildKit
#   has no named build contexts (the air-gapped wheelhouse, docker-compose.wheelhouse.yml);
#   DOCKER_ENGINE=debian12 installs and runs that one instead;
# - the docker CLI (Debian 13's docker-cli) when none is on PATH; compose v2 and buildx, not packaged in
#   Debian 12, from Debian 13's docker-compose and docker-buildx, unpacked into
#   /usr/local/lib/docker/cli-plugins;
# - then dockerd is started in the background unless an engine already answers. Its pid goes to
#   /run/sched-rl-dockerd.pid (stop it with `kill $(cat /run/sched-rl-dockerd.pid)`), its log to
#   /tmp/sched-rl-dockerd.log.
set -euo pipefail

PLUGINS=/usr/local/lib/docker/cli-plugins
PIDFILE=/run/sched-rl-dockerd.pid
mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
    mirror=$(grep -h -m1 -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
fi
mirror="${mirror:-http://deb.debian.org/debian}"

ENGINE_DIR=/usr/local/lib/sched-rl-docker
engine="${DOCKER_ENGINE:-debian13}"
case "$engine" in
    debian13) apt_packages=(containerd runc iptables tini debootstrap ca-certificates curl) ;;
    debian12) apt_packages=(docker.io debootstrap ca-certificates curl) ;;
    *) echo "DOCKER_ENGINE is debian13 (the default) or debian12, not $engine" >&2; exit 2 ;;
esac
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Debian 13's packages, by the file names its package index gives today
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trixie() {  # trixie PACKAGE: unpack Debian 13's PACKAGE into $work/PACKAGE
    [ -f "$work/Packages.gz" ] || curl -fsS "$mirror/dists/trixie/main/binary-amd64/Packages.gz" -o "$work/Packages.gz"
    local file
    file=$(zcat "$work/Packages.gz" | awk -v p="$1" '$1 == "Package:" {hit = ($2 == p)} hit && $1 == "Filename:" && !found {print $2; found = 1}')
    [ -n "$file" ] || { echo "no $1 in trixie's index at $mirror" >&2; exit 1; }
    curl -fsS "$mirror/$file" -o "$work/$1.deb"
    dpkg-deb -x "$work/$1.deb" "$work/$1"
    echo "unpacked $file"
}

dockerd_bin=dockerd
if [ "$engine" = debian13 ]; then
    if [ ! -x "$ENGINE_DIR/dockerd" ] || [ ! -x "$ENGINE_DIR/docker-proxy" ] || [ ! -e "$ENGINE_DIR/docker-init" ]; then
        trixie docker.io
        mkdir -p "$ENGINE_DIR"
        install -m 0755 "$work/docker.io/usr/sbin/dockerd" "$work/docker.io/usr/sbin/docker-proxy" "$ENGINE_DIR/"
        ln -sf /usr/bin/tini-static "$ENGINE_DIR/docker-init"  # as the package links it (tini, from Debian 12)
    fi
    dockerd_bin="$ENGINE_DIR/dockerd"
fi
if ! command -v docker >/dev/null 2>&1; then
    trixie docker-cli
    install -m 0755 "$work/docker-cli/usr/bin/docker" /usr/local/bin/docker
fi
mkdir -p "$PLUGINS"
for pkg in docker-compose docker-buildx; do
    docker "${pkg#docker-}" version >/dev/null 2>&1 && continue
    trixie "$pkg"
    install -m 0755 "$work/$pkg/usr/libexec/docker/cli-plugins/$pkg" "$PLUGINS/$pkg"
done

if docker info >/dev/null 2>&1; then
    echo "a Docker engine already answers"
    exit 0
fi
# docker-proxy and docker-init are looked up on PATH, next to dockerd
PATH="$(dirname "$(command -v "$dockerd_bin")"):$PATH" nohup "$dockerd_bin" >/tmp/sched-rl-dockerd.log 2>&1 &
echo $! >"$PIDFILE"
for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && { echo "dockerd $(docker version --format '{{.Server.Version}}') started (pid $(cat "$PIDFILE"))"; exit 0; }
    sleep 0.5
done
echo "dockerd did not start; its log:" >&2
tail -20 /tmp/sched-rl-dockerd.log >&2
exit 1
