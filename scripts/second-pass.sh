#!/usr/bin/env bash
# The ansible-core 2.21 / Python 3.12 pass of scripts/test.sh, run beside the first.
#
# Each pass builds its own lab fleet, and a fleet is machine-wide state: a
# bridge, named network namespaces, addresses in 198.18.0.0/24, a loopback
# feed server, and files in the work tree (.lab/, inventory/lab/hosts.yml,
# tests/output/). So this pass runs in a network namespace of its own (only
# loopback to start with; its fleet's bridge and hosts are made inside it) and
# a mount namespace of its own, where /run/netns is private and a copy of the
# work tree is mounted over the work tree's own path: every absolute path (the
# collection link, the venvs' scripts) still works, and nothing it writes
# reaches the first pass. Its virtualenv is the work tree's own, mounted in.
#
# Usage (root; scripts/test.sh runs it): scripts/second-pass.sh [pytest options]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
copy=$(mktemp -d "${TMPDIR:-/tmp}/fleetwall-second-pass.XXXXXX")
# pytest's temporary directories, outside the copy (ansible-test copies the work tree's untracked files).
trap 'rm -rf "$copy" "$copy.pytest"' EXIT
# Everything but the venvs, the first pass's lab and test output.
tar -C "$root" --exclude=./.venv --exclude=./.venv312 --exclude=./.lab --exclude=./tests/output \
  -cf - . | tar -C "$copy" -xf -
mkdir -p "$copy/.venv312"
# The inner script's variables are its own, expanded where it runs.
# shellcheck disable=SC2016
unshare --net --mount --propagation private -- bash -c '
  set -euo pipefail
  root=$1 copy=$2
  shift 2
  ip link set lo up
  mkdir -p /run/netns
  mount -t tmpfs -o mode=0755 fleetwall-second-pass /run/netns
  mount --bind "$root/.venv312" "$copy/.venv312"
  mount --rbind "$copy" "$root"
  cd "$root"
  export FLEETWALL_SECOND_PASS=1 FLEETWALL_VENV=.venv312
  exec .venv312/bin/python -m pytest -p no:cacheprovider --basetemp="$copy.pytest" tests/unit tests/integration "$@"
' second-pass "$root" "$copy" "$@"
