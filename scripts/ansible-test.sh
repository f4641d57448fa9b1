#!/usr/bin/env bash
# Runs ansible-test (sanity, units) on this collection, online or offline.
#
#   scripts/ansible-test.sh sanity [ansible-test options]
#   scripts/ansible-test.sh units [ansible-test options]
#   scripts/ansible-test.sh --download        only fill the wheelhouse, then stop
#
# FLEETWALL_VENV picks the ansible-core under test (default .venv: 2.19 on
# Python 3.11; .venv312: 2.21 on Python 3.12). Run scripts/setup.sh first.
#
# ansible-test needs two things from the network: the get-pip bootstrap script
# for each virtualenv it creates, and the pinned packages of each sanity test.
# Both come from a wheelhouse instead: the first run (or --download) fills
# .cache/ansible-test/wheelhouse-py<X.Y> from the package index with
# `pip download`; every run then installs with PIP_NO_INDEX from it, and a
# stand-in bootstrap (scripts/get_pip_offline.py) installs pip from the pip
# wheel there. ansible-test runs pip with a minimal environment (HOME, PATH), so
# the wheelhouse is named in the pip configuration of that HOME. Copy the wheelhouse to a machine without network (or set
# FLEETWALL_WHEELHOUSE to where it is) and nothing else is fetched.
#
# ansible-test only runs in a directory named ansible_collections/NS/NAME, so
# the tracked files are copied into one under .cache/ansible-test/ first;
# ansible-test's HOME is kept there too, so its virtualenvs and cache do not
# touch the user's own ~/.ansible.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="/usr/local/sbin:/usr/sbin:/sbin:$PATH"

download_only=0
if [ "${1:-}" = --download ]; then download_only=1; shift; fi
command=${1:-sanity}
[ $# -gt 0 ] && shift

venv=${FLEETWALL_VENV:-.venv}
python=$root/$venv/bin/python
[ -x "$python" ] || { echo "ansible-test.sh: $venv is missing; run scripts/setup.sh" >&2; exit 2; }
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
ansible_test_dir=$("$python" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')
requirements_dir=$ansible_test_dir/_data/requirements
pip_version=$(grep -oP "^\s*pip='\K[0-9.]+" "$ansible_test_dir/_internal/python_requirements.py")

cache=$root/.cache/ansible-test
wheelhouse=${FLEETWALL_WHEELHOUSE:-$cache/wheelhouse-py$pyver}
home=$cache/home-py$pyver
mkdir -p "$wheelhouse" "$home/.ansible/test/cache"

# Every requirement ansible-test may install for sanity and units, plus ours.
requirement_files=("$requirements_dir"/sanity.*.txt "$requirements_dir/units.txt" "$requirements_dir/ansible.txt"
                   tests/unit/requirements.txt)
stamp=$(cat "${requirement_files[@]}" | sha256sum | cut -c1-16)-pip$pip_version
if [ "$(cat "$wheelhouse/.stamp" 2>/dev/null)" != "$stamp" ]; then
  if [ "${PIP_NO_INDEX:-}" = 1 ]; then
    echo "ansible-test.sh: the wheelhouse $wheelhouse does not match this ansible-test and PIP_NO_INDEX is set;" \
         "run scripts/ansible-test.sh --download where the package index is reachable" >&2
    exit 2
  fi
  echo "ansible-test.sh: downloading ansible-test's requirements for Python $pyver into $wheelhouse"
  args=()
  for file in "${requirement_files[@]}"; do args+=(-r "$file"); done
  # One resolution per file: each sanity test gets its own virtualenv with its own pins.
  "$python" -m pip download -q --disable-pip-version-check -d "$wheelhouse" "pip==$pip_version" setuptools wheel
  for file in "${requirement_files[@]}"; do
    "$python" -m pip download -q --disable-pip-version-check -d "$wheelhouse" \
      -c "$requirements_dir/constraints.txt" -r "$file"
  done
  # Source-only packages are built into wheels now, so an offline install needs no build backend.
  for sdist in "$wheelhouse"/*.tar.gz "$wheelhouse"/*.zip; do
    [ -e "$sdist" ] || continue
    "$python" -m pip wheel -q --disable-pip-version-check --no-deps -w "$wheelhouse" "$sdist"
    rm -f "$sdist"
  done
  echo "$stamp" > "$wheelhouse/.stamp"
fi
[ "$download_only" = 1 ] && { echo "ansible-test.sh: wheelhouse ready: $wheelhouse"; exit 0; }

# ansible-test passes no PIP_* variables to the pip it runs, only HOME, so the
# wheelhouse is made the only source in the user configuration under that HOME.
export HOME=$home
mkdir -p "$home/.config/pip"
printf '[global]\nno-index = true\nfind-links = %s\ndisable-pip-version-check = true\n' "$wheelhouse" \
  > "$home/.config/pip/pip.conf"
export PIP_CONFIG_FILE=$home/.config/pip/pip.conf PIP_NO_INDEX=1 PIP_FIND_LINKS=$wheelhouse
cp scripts/get_pip_offline.py "$home/.ansible/test/cache/get_pip_${pip_version//./_}.py"

# A fresh copy of the tracked (and new, not ignored) files: what the collection ships.
# It lives outside this repository: inside it, ansible-test would ask git for
# the files and find an ignored directory empty.
stage=$(mktemp -d "${TMPDIR:-/tmp}/fleetwall-ansible-test.XXXXXX")
trap 'rm -rf "$stage"' EXIT
collection=$stage/ansible_collections/fleetwall/blocklist
mkdir -p "$collection"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' path; do
  [ -e "$path" ] && printf '%s\0' "$path"
done | tar --null -T - -cf - | tar -xf - -C "$collection"

cd "$collection"
# ansible-test creates its virtualenvs with the Python it runs under, so run it with the venv's Python.
status=0
case $command in
  sanity) "$python" "$root/$venv/bin/ansible-test" sanity --python "$pyver" --color no "$@" || status=$? ;;
  units)  "$python" "$root/$venv/bin/ansible-test" units --venv --requirements --python "$pyver" --color no "$@" || status=$? ;;
  *)      "$python" "$root/$venv/bin/ansible-test" "$command" "$@" || status=$? ;;
esac
exit $status
