#!/usr/bin/env bash
# Makes sure a Docker engine answers. When none does, starts one: through systemd when it runs
# the machine, else Debian's dockerd in the background; as root, or through sudo (which may ask
# for a password on a terminal; under the tests, only passwordless sudo will do). Clears a stale
# pid file first (a dockerd that was killed, or a pid now used by another process), which would
# otherwise stop a new dockerd from starting. DOCKER_BIN names the client (default: docker).
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
docker=${DOCKER_BIN:-docker}

# Succeeds when the engine answers; says why not when it answers but refuses this user.
answers() {
  local err
  err=$("$docker" info 2>&1 >/dev/null) && return 0
  if [[ "$err" == *"permission denied"* ]]; then
    echo "a Docker engine runs, but $(id -un) may not use its socket: add yourself to the docker group ('sudo usermod -aG docker $(id -un)', then log in again)" >&2
    exit 1
  fi
  return 1
}

answers && exit 0

# Root, or sudo: asks for a password only on a terminal (never under the tests).
sudo=()
if [ "$(id -u)" != 0 ]; then
  if ! command -v sudo >/dev/null ||
    ! if [ -t 0 ]; then sudo -v; else sudo -n true 2>/dev/null; fi; then
    echo "no Docker engine answers, and starting one needs root: start Docker (Docker Desktop, or 'sudo systemctl start docker'), or run 'bash .ci/run' as root or with sudo" >&2
    exit 1
  fi
  sudo=(sudo -n)
fi
as_root() { ${sudo[@]+"${sudo[@]}"} "$@"; }

# The engine's log goes to a new file of our own: a fixed name in /tmp could be a link another
# user planted.
log=$(mktemp "${TMPDIR:-/tmp}/model-registry-dockerd.XXXXXX")
if [ -d /run/systemd/system ] && systemctl cat docker.service >/dev/null 2>&1; then
  as_root systemctl start docker.service >"$log" 2>&1 || true
else
  dockerd=$(command -v dockerd) || {
    echo "no Docker engine answers and dockerd is not installed: 'sudo apt-get install -y docker.io' (or run 'bash .ci/run', which does)" >&2
    exit 1
  }
  pidfile=/var/run/docker.pid
  if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
    state=$(ps -o stat= -p "$pid" 2>/dev/null || true)
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    if [ -z "$state" ] || [[ "$state" == Z* ]] || [ "$comm" != dockerd ]; then
      as_root rm -f "$pidfile"
    fi
  fi
  as_root nohup "$dockerd" >"$log" 2>&1 &
fi

for _ in $(seq 1 60); do
  answers && exit 0
  sleep 1
done
echo "the Docker engine did not answer within 60 s (log: $log):" >&2
tail -20 "$log" >&2
exit 1
