#!/usr/bin/env bash
# Prints the name of a local base image with python3, for building the model image where no
# public registry is reachable (tests, benchmark). Made once with debootstrap and `docker import`,
# then reused: from the engine's image store, else from a cached tarball. Both are keyed by the
# recipe below, so a changed recipe makes a new image. Needs root, debootstrap and a Docker engine.
set -euo pipefail

suite=bookworm
variant=minbase
packages=python3
recipe_version=1

key=$(printf '%s\n' "$recipe_version" "$suite" "$variant" "$packages" | sha256sum | cut -c1-12)
image="model-registry-test/base:${suite}-${key}"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi

# HOME may be unset in a trimmed CI environment: fall back to a system cache directory.
cache_dir="${MODEL_REGISTRY_CACHE:-${XDG_CACHE_HOME:-${HOME:-/var/cache}/.cache}/model-registry}"
tarball="$cache_dir/base-${suite}-${key}.tar"
if [ ! -s "$tarball" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "making base image $image with debootstrap ($suite, $variant, $packages)" >&2
  debootstrap --variant="$variant" --include="$packages" "$suite" "$work/rootfs" >"$work/debootstrap.log" 2>&1 || {
    tail -20 "$work/debootstrap.log" >&2
    exit 1
  }
  rm -rf "$work/rootfs"/usr/share/{doc,man,info,locale}/* "$work/rootfs"/var/lib/apt/lists/* "$work/rootfs"/var/cache/apt/*
  mkdir -p "$cache_dir"
  tar --numeric-owner -C "$work/rootfs" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi
docker import --change 'CMD ["python3"]' "$tarball" "$image" >/dev/null
echo "$image"
