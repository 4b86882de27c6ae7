#!/usr/bin/env bash
# Opt-in deployment check (not part of `make test`; needs a running dockerd, and
# root for debootstrap): builds the images, starts Redis, the bot and 2 workers
# with compose on the host's network, sends one photo through a fake Telegram Bot
# API on 127.0.0.1, and stops everything again.
#
#   deploy/check.sh            # or: make docker-check
#
# Where no image registry can be reached, the base image (Debian bookworm with
# python3 and redis-server) is built with debootstrap and `docker import`, and
# the CPU torch wheel is taken from pip's local wheel folders into deploy/wheels/.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_IMAGE=${BASE_IMAGE:-faceprivacy/base:bookworm}
docker info >/dev/null 2>&1 || { echo "dockerd is not running (e.g. dockerd & )" >&2; exit 2; }

if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  echo "building $BASE_IMAGE with debootstrap"
  rm -rf deploy/rootfs
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,redis-server,redis-tools \
    bookworm deploy/rootfs http://deb.debian.org/debian
  # this host's CA bundle (it may hold a proxy's root), so that pip reaches PyPI from inside the build
  cp /etc/ssl/certs/ca-certificates.crt deploy/rootfs/etc/ssl/certs/ca-certificates.crt
  tar -C deploy/rootfs -c . | docker import --change "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt" - "$BASE_IMAGE"
  rm -rf deploy/rootfs
fi
ls deploy/wheels/torch-2.13.0+cpu-*.whl >/dev/null 2>&1 \
  || .venv/bin/pip download --no-deps -d deploy/wheels "torch==2.13.0+cpu"

export TORCH_CPU_INDEX=none  # the wheel is in deploy/wheels/
export BASE_IMAGE REDIS_IMAGE=${REDIS_IMAGE:-$BASE_IMAGE}
export REDIS_PASSWORD=${REDIS_PASSWORD:-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}
export REDIS_PORT=${REDIS_PORT:-6390} BOT_HEALTH_PORT=${BOT_HEALTH_PORT:-8091}
if docker compose version >/dev/null 2>&1; then COMPOSE="docker compose"; else COMPOSE=docker-compose; fi
export COMPOSE

if ! .venv/bin/python -c "import sys, bot.telegram, bot.kakao; sys.exit('torch' in sys.modules)"; then
  echo "the bot still imports torch: building it on the worker image (BOT_TARGET=worker)"
  export BOT_TARGET=worker
fi
$COMPOSE build bot worker
.venv/bin/python deploy/check_conversation.py
