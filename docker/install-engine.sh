#!/usr/bin/env bash
# A Docker engine with compose v2 and buildx on a Debian 12 box without Docker's own repositories (what
# .ci/run uses; docs/deployment.md, the CPU and air-gapped paths). Needs root and apt-get.
# - the engine: Debian's docker.io (20.10 on Debian 12) and debootstrap (for docker/local-base.sh);
# - compose v2 and buildx: not packaged in Debian 12, so Debian 13's docker-compose and docker-buildx
#   packages are fetched from the same mirror and unpacked into /usr/local/lib/docker/cli-plugins (both
#   work with the 20.10 engine);
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

if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io debootstrap
fi

# compose v2 and buildx from Debian 13 (trixie), by the file names its package index gives today
need=()
docker compose version >/dev/null 2>&1 || need+=(docker-compose)
docker buildx version >/dev/null 2>&1 || need+=(docker-buildx)
if [ "${#need[@]}" -gt 0 ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    curl -fsS "$mirror/dists/trixie/main/binary-amd64/Packages.gz" -o "$work/Packages.gz"
    mkdir -p "$PLUGINS"
    for pkg in "${need[@]}"; do
        file=$(zcat "$work/Packages.gz" | awk -v p="$pkg" '$1 == "Package:" {hit = ($2 == p)} hit && $1 == "Filename:" && !found {print $2; found = 1}')
        [ -n "$file" ] || { echo "no $pkg in trixie's index at $mirror" >&2; exit 1; }
        curl -fsS "$mirror/$file" -o "$work/$pkg.deb"
        dpkg-deb -x "$work/$pkg.deb" "$work/$pkg"
        install -m 0755 "$work/$pkg/usr/libexec/docker/cli-plugins/$pkg" "$PLUGINS/$pkg"
        echo "installed $PLUGINS/$pkg from $file"
    done
fi

if docker info >/dev/null 2>&1; then
    echo "a Docker engine already answers"
    exit 0
fi
nohup dockerd >/tmp/sched-rl-dockerd.log 2>&1 &
echo $! >"$PIDFILE"
for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && { echo "dockerd started (pid $(cat "$PIDFILE"))"; exit 0; }
    sleep 0.5
done
echo "dockerd did not start; its log:" >&2
tail -20 /tmp/sched-rl-dockerd.log >&2
exit 1
