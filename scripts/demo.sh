#!/usr/bin/env bash
# Sets everything up on a fresh machine and runs the main job on the lab fleet:
# builds N lab hosts (network namespaces with their own sshd and netfilter
# state), serves the test-data feeds on loopback, runs playbooks/blocklist.yml
# twice (the second must report changed=0), then proves the block with
# packets: the attacker cannot open a TCP connection to any host's sshd, the
# friend can. The lab is torn down at the end unless KEEP_LAB=1.
set -euo pipefail
cd "$(dirname "$0")/.."
# Firewall tools live in sbin, which a non-login shell may not have on PATH.
export PATH="/usr/local/sbin:/usr/sbin:/sbin:$PATH"
hosts=${LAB_HOSTS:-3}
port=${LAB_FEED_PORT:-18080}

scripts/setup.sh
export ANSIBLE_CONFIG=$PWD/ansible.cfg
cleanup() {
  if [ -n "${feed_pid:-}" ]; then kill "$feed_pid" 2>/dev/null || true; fi
  if [ "${KEEP_LAB:-0}" != 1 ]; then python3 lab/fleet.py down >/dev/null; fi
}
trap cleanup EXIT

python3 lab/fleet.py up --hosts "$hosts"
python3 lab/feed_server.py tests/data/feeds --port "$port" --lifetime 1800 >/dev/null &
feed_pid=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done

echo "== run 1: build the shadow copy and push it"
.venv/bin/ansible-playbook playbooks/blocklist.yml -e lab_feed_port="$port"
echo "== run 2: nothing to change"
out=$(.venv/bin/ansible-playbook playbooks/blocklist.yml -e lab_feed_port="$port")
echo "$out" | sed -n '/PLAY RECAP/,$p'
if echo "$out" | grep -E 'changed=[1-9]|failed=[1-9]|unreachable=[1-9]' >/dev/null; then
  echo "demo: the second run was not a clean no-op" >&2; exit 1
fi

echo "== packet check (TCP connect to sshd, 2 s timeout)"
fail=0
for i in $(seq 1 "$hosts"); do
  v4=198.18.0.$((10 + i)); v6=2001:db8:f1ee::$((10 + i))
  for check in "attacker $v4 198.18.0.200 blocked" "attacker $v6 2001:db8:f1ee::200 blocked" \
               "friend $v4 198.18.0.201 connected" "friend $v6 2001:db8:f1ee::201 connected"; do
    read -r who target source expected <<<"$check"
    got=$(python3 lab/fleet.py connect "$who" "$target" 22 --source "$source" || true)
    mark=ok; [ "$got" = "$expected" ] || { mark=WRONG; fail=1; }
    printf '  h%-2s %-8s %-22s -> %-9s (expected %s) %s\n' "$i" "$who" "$target" "$got" "$expected" "$mark"
  done
done
if [ "$fail" != 0 ]; then echo "demo: packet check FAILED" >&2; exit 1; fi
echo "demo: attackers dropped, friends served on every host"
