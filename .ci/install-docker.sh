#!/usr/bin/env bash
# Make a Docker engine available for the sandbox tests, then build the offline base image.
# Idempotent: installs docker.io + debootstrap only if missing, starts dockerd only if not answering.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}

if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1 || ! command -v bwrap >/dev/null 2>&1; then
  echo "installing docker.io, debootstrap and bubblewrap"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq docker.io debootstrap bubblewrap >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "starting dockerd in the background (log: /tmp/dockerd.log)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO sh -c 'nohup dockerd > /tmp/dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    echo "dockerd did not come up within 60 s:" >&2
    tail -n 30 /tmp/dockerd.log >&2 || true
    exit 1
  fi
fi
echo "docker engine: $(docker version --format '{{.Server.Version}}')"

# Builds envgym/base:<hash> unless this daemon already has it (about a minute on 2 cores).
timeout 600 "$PY" -m envgym.cli sandbox build-base 2>/dev/null \
  || timeout 600 "$PY" -c "from envgym.sandboxes.images import ensure_base_image; print(ensure_base_image(print))"
