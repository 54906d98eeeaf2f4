#!/bin/sh
# `pip install "$@"` inside an image build, with what the build was given and nothing baked in:
# - the BuildKit secret `pip_ca` (a PEM bundle: a proxy's or a private index's CA), when the build mounted
#   one that is not empty: `--secret id=pip_ca,src=/etc/ssl/certs/ca-certificates.crt`;
# - PIP_INDEX_URL / PIP_EXTRA_INDEX_URL (build arguments, read by pip from the environment);
# - a wheelhouse at /wheels (a bind mount of the `wheelhouse` stage), searched first when it has wheels.
set -eu
# compose passes an unset index as an empty build argument; pip would take "" for an address
[ -n "${PIP_INDEX_URL:-}" ] || unset PIP_INDEX_URL
[ -n "${PIP_EXTRA_INDEX_URL:-}" ] || unset PIP_EXTRA_INDEX_URL
if [ -s /run/secrets/pip_ca ]; then
    export PIP_CERT=/run/secrets/pip_ca
fi
if [ -n "$(ls /wheels/*.whl 2>/dev/null || true)" ]; then
    set -- --find-links /wheels "$@"
fi
exec pip install --no-cache-dir "$@"
