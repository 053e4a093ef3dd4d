#!/usr/bin/env bash
# Start Helix the way Railway and `docker run` do: check everything, then become the bot.
#
#   bash deploy_v15.3.sh            exec the bot, which runs the preflight (runtime) first
#   bash deploy_v15.3.sh --check    preflight only (runtime checks)
#   bash deploy_v15.3.sh --build    preflight, build-time subset (the Dockerfile runs this)
#   bash deploy_v15.3.sh --probe    preflight plus a live round trip on the archive remote
#
# The preflight is `python -m preflight` (the same as `python -m bot check`): it imports only the
# standard library before checking, so a missing package is reported by name, not as a traceback.
# `python -m bot run --preflight` runs the same checks, alone when a package it needs is missing.
# `exec` replaces this shell with Python, so Railway's SIGTERM reaches the bot, not bash.
set -euo pipefail

usage() {
    sed -n '4,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

mode="run"
if [[ $# -gt 1 ]]; then
    echo "deploy_v15.3.sh: give at most one option" >&2
    usage >&2
    exit 2
fi
case "${1:-}" in
    "") mode="run" ;;
    --check) mode="check" ;;
    --build) mode="build" ;;
    --probe) mode="probe" ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "deploy_v15.3.sh: unknown option '$1'" >&2
        usage >&2
        exit 2
        ;;
esac

cd "$(dirname "${BASH_SOURCE[0]}")"

case "$mode" in
    build) exec python -m preflight --build ;;
    check) exec python -m preflight ;;
    probe) exec python -m preflight --probe ;;
    run)
        # The preflight runs inside the bot's process, after /health is up (`--preflight`): the
        # health check is answered within seconds of the start, and everything is imported once.
        exec python -m bot run --preflight
        ;;
esac
