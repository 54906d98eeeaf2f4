#!/usr/bin/env bash
# The images the compose files start from, made where no public image registry can be reached (the
# air-gapped path, docs/deployment.md); `make local-base` runs it.
# - sched-rl/python:3.11-local: a Debian minbase root made with debootstrap from the machine's own Debian
#   mirror, Python 3.11 in a virtual environment on PATH, so `python` and `pip` behave as in
#   `python:3.11-slim` (PYTHON_BASE_IMAGE for compose, BASE_IMAGE for `docker build`);
# - sched-rl/nginx:local: Debian's nginx on that base, for docker-compose.lb.yml (LB_IMAGE);
# - sched-rl/wheelhouse:local: the wheel files of WHEELHOUSE_DIR (default /opt/wheels, where this machine keeps
#   torch's CPU wheel) as an image, for Dockerfile.train's `wheelhouse` stage (WHEELHOUSE_IMAGE), made only
#   when that folder has wheels.
#
#   sudo docker/local-base.sh             # builds what is missing
#   sudo docker/local-base.sh --force     # rebuilds all three
#
# Needs root, debootstrap and a running Docker engine. About two minutes; reuses what is there.
set -euo pipefail

IMAGE="${LOCAL_BASE_IMAGE:-sched-rl/python:3.11-local}"
SUITE="${DEBIAN_SUITE:-bookworm}"  # bookworm's python3 is 3.11, the version python:3.11-slim carries
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

LB_IMAGE="${LB_IMAGE:-sched-rl/nginx:local}"
WHEELHOUSE_IMAGE="${WHEELHOUSE_IMAGE:-sched-rl/wheelhouse:local}"
WHEELHOUSE_DIR="${WHEELHOUSE_DIR:-/opt/wheels}"

present() { [ "$FORCE" = 0 ] && docker image inspect "$1" >/dev/null 2>&1; }
size() { docker image inspect -f '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1/1e6}'; }

wheelhouse() {
    if present "$WHEELHOUSE_IMAGE"; then
        echo "$WHEELHOUSE_IMAGE already present"
    elif ls "$WHEELHOUSE_DIR"/*.whl >/dev/null 2>&1; then
        (cd "$WHEELHOUSE_DIR" && tar -c ./*.whl) | docker import - "$WHEELHOUSE_IMAGE" >/dev/null
        echo "built $WHEELHOUSE_IMAGE from $WHEELHOUSE_DIR: $(size "$WHEELHOUSE_IMAGE")"
    else
        echo "no wheels in $WHEELHOUSE_DIR: $WHEELHOUSE_IMAGE not made (torch then comes from TORCH_INDEX_URL)"
    fi
}

nginx_image() {
    if present "$LB_IMAGE"; then
        echo "$LB_IMAGE already present"
        return
    fi
    start=$(date +%s)
    # wget for the healthcheck (the official nginx:alpine image has busybox's)
    printf '%s\n' "FROM $IMAGE" \
        "RUN apt-get update && apt-get install -y --no-install-recommends nginx-light wget && rm -rf /var/lib/apt/lists/*" \
        'CMD ["nginx", "-g", "daemon off;"]' | docker build -q -t "$LB_IMAGE" - >/dev/null
    echo "built $LB_IMAGE in $(( $(date +%s) - start )) s: $(size "$LB_IMAGE")"
}

if present "$IMAGE"; then
    echo "$IMAGE already present (--force rebuilds it)"
    nginx_image
    wheelhouse
    exit 0
fi

# The mirror this machine's apt uses (deb822 or one-line sources), else Debian's own.
mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
    mirror=$(grep -h -m1 -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
fi
if [ -z "$mirror" ]; then
    mirror=$(grep -h -m1 -E '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -1 || true)
fi
mirror="${mirror:-http://deb.debian.org/debian}"

root=$(mktemp -d /tmp/sched-rl-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
start=$(date +%s)
echo "debootstrap $SUITE from $mirror into $root"
debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-dev,python-is-python3,ca-certificates,passwd \
    "$SUITE" "$root" "$mirror" >"$root.log" 2>&1 || { tail -20 "$root.log"; exit 1; }
rm -f "$root.log"

# python:3.11-slim's conveniences: pip on PATH and installing into an environment of its own (Debian's
# system Python refuses `pip install`, PEP 668).
chroot "$root" python3 -m venv /opt/venv
chroot "$root" /bin/sh -c 'apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/* /usr/share/locale/*'

tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV VIRTUAL_ENV=/opt/venv' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$IMAGE" >/dev/null
echo "built $IMAGE in $(( $(date +%s) - start )) s: $(size "$IMAGE")"
nginx_image
wheelhouse
