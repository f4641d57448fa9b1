#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for the lab and the tests: system packages
# through apt-get, Python packages into virtualenvs, and the collection made
# importable as fleetwall.blocklist from this working tree.
#   .venv      Debian's python3 (3.11) with ansible-core 2.19
#   .venv312   Python 3.12 with ansible-core 2.21, when a 3.12 is on the machine
set -euo pipefail
cd "$(dirname "$0")/.."
# Firewall tools live in sbin, which a non-login shell may not have on PATH.
export PATH="/usr/local/sbin:/usr/sbin:/sbin:$PATH"
root=$PWD

need=()
for pair in sshd:openssh-server ssh:openssh-client ipset:ipset iptables:iptables ip:iproute2 \
            nsenter:util-linux unshare:util-linux nft:nftables ufw:ufw nginx:nginx \
            firewalld:firewalld dbus-daemon:dbus-daemon fail2ban-client:fail2ban \
            shellcheck:shellcheck iprange:iprange; do
  tool=${pair%%:*}; pkg=${pair#*:}
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || need+=("$pkg")
done
/usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
# One test reads a tool's errors under a translated locale: the German locale's source and glibc's German messages.
[ -e /usr/share/i18n/locales/de_DE ] || need+=(locales)
[ -e /usr/share/locale/de/LC_MESSAGES/libc.mo ] || need+=(libc-l10n)
# The XDP program's check (src/xdp/build.py --check): clang for the BPF target, and the headers it includes.
command -v clang >/dev/null 2>&1 || need+=(clang)
[ -e /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
[ -e /usr/include/linux/bpf.h ] || need+=(linux-libc-dev)
# The fleet report's page is tested in a real browser (tests/integration/browser.py).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The lab runs nginx, firewalld and fail2ban inside its hosts only: a package's
  # postinst must not start them on this machine (firewalld would flush its
  # iptables rules), so service starts are denied while installing.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  mapfile -t packages < <(printf '%s\n' "${need[@]}" | sort -u)
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  trap - EXIT
  [ "$(cat "$policy" 2>/dev/null)" != "$(printf '#!/bin/sh\nexit 101')" ] || rm -f "$policy"
fi

if ! locale -a 2>/dev/null | grep -qx 'de_DE.utf8'; then
  localedef -i de_DE -f UTF-8 de_DE.UTF-8
fi

make_venv() {  # make_venv DIR PYTHON
  local dir=$1 py=$2 stamp
  stamp=$(cat requirements.txt requirements-test.txt | sha256sum | cut -c1-16)
  if [ -f "$dir/.stamp" ] && [ "$(cat "$dir/.stamp")" = "$stamp" ]; then return 0; fi
  rm -rf "$dir"
  "$py" -m venv "$dir"
  if ! "$dir/bin/pip" install -q --disable-pip-version-check -r requirements-test.txt >"$dir.log" 2>&1; then
    cat "$dir.log" >&2; echo "setup: pip install into $dir failed" >&2; exit 1
  fi
  echo "$stamp" > "$dir/.stamp"
}

make_venv .venv /usr/bin/python3
py312=""
for candidate in /root/.pyenv/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12; do
  if [ -x "$candidate" ] && "$candidate" -c 'import venv' >/dev/null 2>&1; then py312=$candidate; break; fi
done
if [ -n "$py312" ] && [ "${FLEETWALL_SKIP_312:-0}" != 1 ]; then
  make_venv .venv312 "$py312"
fi

# The repository is the collection root; Ansible finds it through this link
# (ansible.cfg points collections_path at .collections).
mkdir -p .collections/ansible_collections/fleetwall
ln -sfn "$root" .collections/ansible_collections/fleetwall/blocklist
echo "setup: ready ($(.venv/bin/ansible --version | head -1)${py312:+; .venv312: $(.venv312/bin/ansible --version | head -1)})"
