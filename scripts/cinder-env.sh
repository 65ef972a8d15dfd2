#!/usr/bin/env bash
# Cinder 29's own backup drivers (S3, Swift) in a venv, for Holdfast's interop tests.
#
#   scripts/cinder-env.sh DIR      build (or reuse) DIR/cinder-venv; print its python
#
# Example: PY=$(scripts/cinder-env.sh target/cinder)
#          "$PY" tests/support/cinder_backup.py backup --driver s3 ...
#
# What it does (needs bash and a python3 >= 3.10 with venv; packages from PyPI only):
#   a venv DIR/cinder-venv with the pinned cinder release plus what its S3 and
#   Swift backup drivers import (boto3, python-swiftclient) and the zstd module
#   (Cinder compresses with zstd only when it is installed). A venv whose marker
#   file matches the wanted pins and Python is reused, so a second run skips pip
#   entirely; the marker is written last, so a half-built venv is never reused.
#   The venv is then checked by importing both drivers. The only thing printed on
#   stdout is the venv's python path; progress goes to stderr, pip's output to
#   DIR/cinder-venv.pip.log.
#
# Environment knobs (all optional):
#   PYTHON            interpreter the venv is built from (default python3)
#   CINDER_PIP_SPEC   override the pinned requirements
set -euo pipefail

CINDER_PIP_SPEC=${CINDER_PIP_SPEC:-"cinder==29.0.0 boto3==1.44.8 python-swiftclient==4.11.0 zstd==1.5.7.2"}
PYTHON=${PYTHON:-python3}

T0=$EPOCHREALTIME
elapsed() { echo "$EPOCHREALTIME - $T0" | awk '{printf "%.1f", $1 - $3}'; }
log() { printf '[cinder-env %6.1fs] %s\n' "$(elapsed)" "$*" >&2; }
die() { printf '[cinder-env] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $# -eq 1 && $1 != -* ]] || { echo "usage: $0 DIR   (env: PYTHON, CINDER_PIP_SPEC)" >&2; exit 2; }
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
command -v "$PYTHON" >/dev/null || die "python interpreter '$PYTHON' not found (set PYTHON=...)"
PYVER=$("$PYTHON" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3]); assert sys.version_info >= (3, 10)') \
    || die "$PYTHON must be Python >= 3.10 (cinder 29 needs it)"

V=$DIR/cinder-venv
MARKER=$V/.holdfast-ready
WANT="python $PYVER: $CINDER_PIP_SPEC"

# Two runs at once (parallel tests) must not build the same venv together.
exec 9>"$DIR/cinder-venv.lock"
flock 9

if [[ -f $MARKER && "$(<"$MARKER")" == "$WANT" && -x $V/bin/python ]]; then
    log "reusing $V ($CINDER_PIP_SPEC)"
else
    log "building $V: pip install $CINDER_PIP_SPEC (log: $V.pip.log)"
    rm -rf "$V"
    {
        "$PYTHON" -m venv "$V" &&
            # shellcheck disable=SC2086  # the spec is a word list on purpose
            "$V/bin/pip" install --disable-pip-version-check --no-input $CINDER_PIP_SPEC
    } >"$V.pip.log" 2>&1 || {
        tail -n 30 "$V.pip.log" >&2
        die "building $V failed (full log: $V.pip.log)"
    }
    # Both drivers and the compressor import: what the harness needs, checked once.
    "$V/bin/python" -W ignore -c '
import zstd, boto3, swiftclient
from cinder.backup.drivers import s3, swift
from cinder.backup import chunkeddriver
' >>"$V.pip.log" 2>&1 || { tail -n 30 "$V.pip.log" >&2; die "$V: the cinder drivers do not import (log: $V.pip.log)"; }
    echo "$WANT" >"$MARKER"
    log "built $V"
fi
echo "$V/bin/python"
