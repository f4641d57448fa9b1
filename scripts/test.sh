#!/usr/bin/env bash
# Runs every test: unit tests and the lab-fleet integration tests, with
# ansible-core 2.19 on Debian's Python 3.11 and, when the machine has Python
# 3.12, with ansible-core 2.21 on it. Installs what it needs (scripts/setup.sh).
# Needs root: the integration tests build network namespaces.
#
# The two passes run side by side: the second in network and mount
# namespaces of its own, over a copy of the work tree (scripts/second-pass.sh),
# so that each has its own lab fleet. Its output follows the first's.
set -euo pipefail
cd "$(dirname "$0")/.."
# Firewall tools live in sbin, which a non-login shell may not have on PATH.
export PATH="/usr/local/sbin:/usr/sbin:/sbin:$PATH"
scripts/setup.sh
setup_seconds=$SECONDS
export PYTHONDONTWRITEBYTECODE=1
status=0
second=
if [ -x .venv312/bin/python ]; then
  # The second pass has no network: what ansible-test installs offline is fetched here, first.
  FLEETWALL_VENV=.venv312 scripts/ansible-test.sh --download
  second_log=$(mktemp "${TMPDIR:-/tmp}/fleetwall-second-pass.XXXXXX.log")
  # The files that test nothing of ansible-core (the kill campaigns, the bounded decoder, the parser's
  # property tests) run in the first pass only (tests/conftest.py).
  (
    started=$SECONDS
    status=0
    scripts/second-pass.sh "$@" > "$second_log" 2>&1 || status=$?
    echo $((SECONDS - started)) > "$second_log.seconds"
    exit $status
  ) &
  second=$!
fi
echo "== ansible-core 2.19 / Python 3.11"
first_started=$SECONDS
FLEETWALL_VENV=.venv .venv/bin/python -m pytest -p no:cacheprovider tests/unit tests/integration "$@" || status=$?
timing="setup ${setup_seconds} s, ansible-core 2.19 pass $((SECONDS - first_started)) s"
if [ -n "$second" ]; then
  second_status=0
  wait "$second" || second_status=$?
  echo "== ansible-core 2.21 / Python 3.12 (run beside the first, in namespaces of its own)"
  cat "$second_log"
  timing="$timing, ansible-core 2.21 pass $(cat "$second_log.seconds" 2>/dev/null || echo '?') s (beside it)"
  rm -f "$second_log" "$second_log.seconds"
  [ "$second_status" -eq 0 ] || status=$second_status
fi
# Each pass's time per part is in its own summary above ("time per part").
echo "== time: $timing; total $SECONDS s"
exit $status
