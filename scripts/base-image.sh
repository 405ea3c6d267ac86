#!/usr/bin/env bash
# Prints the name of a local base image with python3, for building the model image where no
# public registry is reachable (tests, benchmark). Made once with debootstrap and `docker import`,
# then reused: from the engine's image store, else from a cached tarball. Both are keyed by the
# recipe below, so a changed recipe makes a new image. Bootstraps Debian bookworm, or on Ubuntu
# the host's own release (its debootstrap, keyring and mirror serve that one). debootstrap needs
# root: run as root or with sudo (which may ask for a password on a terminal, never under tests).
#
# MODEL_REGISTRY_BASE_IMAGE=<image> uses that image instead (pulled when the engine lacks it; for
# example python:3.12-slim, the Dockerfile's default), where there is no debootstrap (macOS) or
# a registry is reachable. DOCKER_BIN names the Docker client (default: docker).
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
docker=${DOCKER_BIN:-docker}

if [ -n "${MODEL_REGISTRY_BASE_IMAGE:-}" ]; then
  "$docker" image inspect "$MODEL_REGISTRY_BASE_IMAGE" >/dev/null 2>&1 ||
    "$docker" pull --quiet "$MODEL_REGISTRY_BASE_IMAGE" >&2
  echo "$MODEL_REGISTRY_BASE_IMAGE"
  exit 0
fi

# shellcheck source=/dev/null
os=$(. /etc/os-release 2>/dev/null && echo "${ID:-} ${VERSION_CODENAME:-}") || os=""
read -r os_id os_codename <<<"$os" || true
suite=bookworm
if [ "$os_id" = ubuntu ] && [ -n "$os_codename" ]; then
  suite=$os_codename
fi
variant=minbase
packages=python3
recipe_version=1

key=$(printf '%s\n' "$recipe_version" "$suite" "$variant" "$packages" | sha256sum | cut -c1-12)
image="model-registry-test/base:${suite}-${key}"

if err=$("$docker" image inspect "$image" 2>&1 >/dev/null); then
  echo "$image"
  exit 0
fi
if [[ "$err" != *[Nn]"o such image"* ]]; then
  echo "cannot ask the Docker engine for $image: $err" >&2
  exit 1
fi

# HOME may be unset in a trimmed CI environment: fall back to a system cache directory.
cache_dir="${MODEL_REGISTRY_CACHE:-${XDG_CACHE_HOME:-${HOME:-/var/cache}/.cache}/model-registry}"
tarball="$cache_dir/base-${suite}-${key}.tar"
if [ ! -s "$tarball" ]; then
  # Root, or sudo: asks for a password only on a terminal (never under the tests).
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    if ! command -v sudo >/dev/null ||
      ! if [ -t 0 ]; then sudo -v; else sudo -n true 2>/dev/null; fi; then
      echo "making the base image $image needs root (debootstrap): run as root or with sudo, or set MODEL_REGISTRY_BASE_IMAGE to an image to use instead" >&2
      exit 1
    fi
    sudo=(sudo -n)
  fi
  # ${sudo[@]+...}: an empty array is "unbound" under set -u in bash before 4.4.
  as_root() { ${sudo[@]+"${sudo[@]}"} "$@"; }
  # The cache must be writable before minutes of debootstrap, not after.
  if ! mkdir -p "$cache_dir" 2>/dev/null || [ ! -w "$cache_dir" ]; then
    echo "cannot write the base image cache $cache_dir: set MODEL_REGISTRY_CACHE to a writable directory" >&2
    exit 1
  fi
  command -v debootstrap >/dev/null || {
    echo "making the base image $image needs debootstrap: 'sudo apt-get install -y debootstrap', or set MODEL_REGISTRY_BASE_IMAGE to an image to use instead" >&2
    exit 1
  }
  work=$(mktemp -d)
  # The root file system belongs to root: only root can remove it.
  trap 'as_root rm -rf "$work/rootfs"; rm -rf "$work"' EXIT
  echo "making base image $image with debootstrap ($suite, $variant, $packages)" >&2
  as_root debootstrap --variant="$variant" --include="$packages" "$suite" "$work/rootfs" >"$work/debootstrap.log" 2>&1 || {
    tail -20 "$work/debootstrap.log" >&2
    exit 1
  }
  # shellcheck disable=SC2016 # $1 is expanded by the inner sh
  as_root sh -c 'cd "$1" && rm -rf usr/share/doc/* usr/share/man/* usr/share/info/* usr/share/locale/* var/lib/apt/lists/* var/cache/apt/*' sh "$work/rootfs"
  mkdir -p "$cache_dir"
  # tar runs as root (it reads root's files); the tarball is written by, and belongs to, this user.
  as_root tar --numeric-owner -C "$work/rootfs" -cf - . >"$tarball.tmp"
  mv "$tarball.tmp" "$tarball"
fi
"$docker" import --change 'CMD ["python3"]' "$tarball" "$image" >/dev/null
echo "$image"
