#!/usr/bin/env bash
# Makes sure a Docker engine answers: starts Debian's dockerd (as root) when none does, and waits
# for it. Clears a stale pid file first (a dockerd that was killed, or a pid now used by another
# process), which would otherwise stop a new dockerd from starting.
set -euo pipefail
export PATH="/usr/bin:/usr/sbin:$PATH"

docker info >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "no Docker engine answers, and only root can start dockerd: start it, or run 'bash .ci/run' as root" >&2
  exit 1
fi

pidfile=/var/run/docker.pid
if [ -f "$pidfile" ]; then
  pid=$(cat "$pidfile")
  state=$(ps -o stat= -p "$pid" 2>/dev/null || true)
  comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
  if [ -z "$state" ] || [[ "$state" == Z* ]] || [ "$comm" != dockerd ]; then
    rm -f "$pidfile"
  fi
fi

log=/tmp/model-registry-dockerd.log
nohup dockerd >"$log" 2>&1 &
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
done
echo "dockerd did not answer within 60 s:" >&2
tail -20 "$log" >&2
exit 1
