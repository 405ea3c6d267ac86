#!/usr/bin/env bash
# The README's local quick start ("Try it on your machine, no cloud account"), run for real with
# the Pulumi CLI and a Docker engine, and checked with skopeo, an independent registry client:
#
#   the two set-up lines        pulumi up publishes 1.0.0
#   the "use it" lines          pulumi stack output image_ref, docker run it, curl /predict
#   modelVersion 1.1.0 and up   1.1.0 is pushed; 1.0.0 keeps its digest
#   modelVersion 1.0.0 and up   the rollback pushes nothing (the registry receives no write)
#   up again                    a retry pushes nothing
#   pulumi stack output repository_uri
#   pulumi destroy              the container goes; the volume and every version stay (a plain
#                               registry container on the volume serves both digests)
#
# The commands come from README.md: the set-up and "use it" blocks are read from the section and
# run as written, and every other command this script runs must appear in the README verbatim (the
# script stops when the README no longer says it). Two things differ, and the log says so:
#   - `pulumi login --local` logs in to file://<temporary dir> instead of file://~ (the same local
#     backend; --local always means the user's home directory, taken from the password database,
#     not $HOME), with PULUMI_HOME in the same temporary dir: the user's login and stacks are not
#     touched. The user's plugin cache is linked in, when there is one, so nothing is downloaded
#     twice.
#   - PULUMI_CONFIG_PASSPHRASE is random (generated into the temporary dir, never printed) instead
#     of the README's `local-try-out`.
# PULUMI_SKIP_CONFIRMATIONS=true lets `pulumi up` and `pulumi destroy` run without a terminal.
# The project is copied to the temporary dir first (`pulumi config set` writes the stack file, and
# the README runs `npm ci`), so the working tree is left as it was.
#
# When the stack exports registry_login (the generated login of the registry it runs, which
# refuses anonymous access), skopeo reads with it from an auth file in the temporary dir, never on
# the command line, and the script checks that an anonymous read is refused.
#
# Where this has run: NOT yet with a real Pulumi CLI. It was written on a Debian machine with a
# Docker engine, a distribution registry and skopeo but no Pulumi CLI and no internet access;
# there it was checked with `bash -n` and shellcheck, and its skip path ran. Its first real run is
# meant for a machine with the Pulumi CLI 3.x, Docker and internet access (the python base image,
# npm packages and the docker provider plugin are downloaded).
#
# Without a `pulumi` on PATH it prints one line saying so and exits 0. Needs Docker (DOCKER_BIN
# names the client, as in .ci/run), skopeo and curl; port 5000 and 8080 free on 127.0.0.1; no
# container named model-registry-local-registry or model, and no volume
# model-registry-local-registry-data (they would be a local stack of yours: the script refuses to
# touch them). It removes what it created, whatever happens.
set -euo pipefail

if ! command -v pulumi >/dev/null; then
  echo "e2e-local skipped: no pulumi CLI on PATH (install the Pulumi CLI 3.x to run the README's local quick start for real)"
  exit 0
fi

project_dir="$(cd "$(dirname "$0")/.." && pwd)"
readme="$project_dir/README.md"
container=model-registry-local-registry
volume=model-registry-local-registry-data
check_container=model-registry-e2e-volume-check

docker() { command "${DOCKER_BIN:-docker}" "$@"; }
say() { printf '\n== %s\n' "$*"; }
fail() {
  echo "e2e-local FAILED: $*" >&2
  exit 1
}

for tool in skopeo curl node npm; do
  command -v "$tool" >/dev/null || fail "$tool is not on PATH"
done
docker info >/dev/null 2>&1 || fail "no Docker engine answers (${DOCKER_BIN:-docker} info)"

say "what runs where"
echo "machine: $(uname -srmo)"
echo "pulumi:  $(pulumi version)"
echo "docker:  $(docker version --format 'client {{.Client.Version}}, engine {{.Server.Version}} ({{.Server.Os}}/{{.Server.Arch}})')"
echo "skopeo:  $(skopeo --version)"
echo "node:    $(node --version), npm $(npm --version)"
echo "project: $project_dir"

# Someone's own local stack uses these names; this script would replace or delete them.
for name in "$container" model; do
  if docker container inspect "$name" >/dev/null 2>&1; then
    fail "a container named $name exists (a local stack of yours?); remove it or run this elsewhere"
  fi
done
if docker volume inspect "$volume" >/dev/null 2>&1; then
  fail "the volume $volume exists (the versions of a local stack of yours?); this script would delete it"
fi

tmp="$(mktemp -d)"
created_resources=false
cleanup() {
  status=$?
  set +e
  if [ "$created_resources" = true ]; then
    docker rm -f model "$container" "$check_container" >/dev/null 2>&1
    docker volume rm "$volume" >/dev/null 2>&1
    docker image ls --format '{{.Repository}}:{{.Tag}}' |
      grep '^127\.0\.0\.1:5000/model-registry-local:' |
      xargs -r "${DOCKER_BIN:-docker}" image rm >/dev/null 2>&1
  fi
  rm -rf "$tmp"
  if [ "$status" -eq 0 ]; then
    echo "e2e-local passed"
  else
    echo "e2e-local failed (exit $status); what it created was removed" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A Pulumi home and backend of this run's own, and a random passphrase that is never printed.
user_pulumi_home="${PULUMI_HOME:-$HOME/.pulumi}"
export PULUMI_HOME="$tmp/pulumi-home"
mkdir -p "$PULUMI_HOME" "$tmp/state"
if [ -d "$user_pulumi_home/plugins" ]; then
  ln -s "$user_pulumi_home/plugins" "$PULUMI_HOME/plugins"
fi
(
  umask 077
  head -c 32 /dev/urandom | base64 | tr -d '/+=\n' >"$tmp/passphrase"
)
PULUMI_CONFIG_PASSPHRASE="$(cat "$tmp/passphrase")"
export PULUMI_CONFIG_PASSPHRASE
unset PULUMI_CONFIG_PASSPHRASE_FILE PULUMI_ACCESS_TOKEN PULUMI_BACKEND_URL
export PULUMI_SKIP_CONFIRMATIONS=true PULUMI_SKIP_UPDATE_CHECK=true E2E_STATE="$tmp/state"

# The project, as it is in the working tree (tracked and new files, not node_modules).
work="$tmp/project"
mkdir -p "$work"
if git -C "$project_dir" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$project_dir" ls-files -z --cached --others --exclude-standard |
    (cd "$project_dir" && tar --null -T - -cf -) | tar -xf - -C "$work"
else
  tar -C "$project_dir" --exclude=./node_modules --exclude=./.cache --exclude=./.git -cf - . |
    tar -xf - -C "$work"
fi
cd "$work"

# The README's local quick start section, and its ```sh blocks in order.
section="$(awk '/^### Try it on your machine/ { on = 1; next } on && /^#/ { exit } on' "$readme")"
[ -n "$section" ] || fail "README.md has no '### Try it on your machine' section"
block() {
  awk -v want="$1" '/^```sh$/ { n++; on = (n == want); next } /^```$/ { on = 0 } on' <<<"$section"
}
readme_says() {
  grep -qF -- "$1" <<<"$section" || grep -qF -- "$1" "$readme" ||
    fail "README.md no longer says '$1': update scripts/e2e-local.sh to what it says now"
}

# Runs one README line as written, but for the two differences described at the top.
readme_line() {
  local line="$1" ran
  ran="${line//pulumi login --local/pulumi login \"file://\$E2E_STATE\"}"
  ran="$(sed -E 's/export PULUMI_CONFIG_PASSPHRASE=[^ ;&|]*/: PULUMI_CONFIG_PASSPHRASE is set, random/' <<<"$ran")"
  echo "README: $line"
  [ "$ran" = "$line" ] || echo "  ran:  $ran"
  eval "$ran"
}
# Runs a command the README names in its prose, after checking that it still does.
readme_command() {
  readme_says "$1"
  echo "README: $1"
  eval "$1"
}

# The registry's login, when the stack exports one (registry_login, a secret): an auth file for
# skopeo, written without the password passing through a command line.
auth_args=()
registry_auth() {
  local login
  login="$(pulumi stack output registry_login --show-secrets --json 2>/dev/null || true)"
  auth_args=()
  if [ -n "$login" ] && [ "$login" != null ]; then
    (
      umask 077
      node -e '
        const login = JSON.parse(require("fs").readFileSync(0, "utf8"));
        const auth = Buffer.from(login.username + ":" + login.password).toString("base64");
        process.stdout.write(JSON.stringify({ auths: { [process.argv[1]]: { auth } } }));' \
        "${repo%%/*}" <<<"$login" >"$tmp/auth.json"
    )
    auth_args=(--authfile "$tmp/auth.json")
  fi
}
digest_of() {
  skopeo inspect --tls-verify=false "${auth_args[@]}" --format '{{.Digest}}' "docker://$repo:$1"
}
# Writes (blob uploads, manifest puts) the stack's registry received since $1.
registry_writes() {
  docker logs --since "$1" "$container" 2>&1 |
    grep -cE 'http\.request\.method"?[=:] ?"?(PUT|POST|PATCH)' || true
}
# skipPush of the docker.Image resource of version $1, from the stack's state.
image_skip_push() {
  pulumi stack export | node -e '
    const state = JSON.parse(require("fs").readFileSync(0, "utf8"));
    const image = state.deployment.resources.find((r) => r.type === "docker:index/image:Image" &&
      (r.outputs?.imageName ?? "").endsWith(":" + process.argv[1]));
    console.log(image ? String(image.outputs.skipPush ?? false) : "absent");' "$1"
}

say "set-up (README, first block)"
mapfile -t setup < <(block 1)
[ "${#setup[@]}" -gt 0 ] || fail "README.md's local quick start has no set-up block"
created_resources=true
for line in "${setup[@]}"; do readme_line "$line"; done

repo="$(pulumi stack output repository_uri)"
registry_auth
v100="$(digest_of 1.0.0)" || fail "skopeo does not find 1.0.0 in $repo after the first pulumi up"
echo "skopeo: $repo:1.0.0 is $v100"
[ "$(pulumi stack output image_ref)" = "$repo@$v100" ] ||
  fail "image_ref $(pulumi stack output image_ref) is not $repo@$v100"
if [ "${#auth_args[@]}" -gt 0 ]; then
  if skopeo inspect --tls-verify=false --no-creds "docker://$repo:1.0.0" >/dev/null 2>&1; then
    fail "the stack's registry answered an anonymous read; it must ask for credentials"
  fi
  echo "an anonymous read of $repo:1.0.0 is refused"
fi

say "use what it published (README, second block)"
mapfile -t use < <(block 2)
[ "${#use[@]}" -gt 0 ] || fail "README.md's local quick start has no block that uses the image"
for line in "${use[@]}"; do
  if [[ "$line" == curl* ]]; then
    # The README's curl follows `docker run -d` at once; wait until the server answers.
    for _ in $(seq 1 60); do
      curl -sf localhost:8080/health >/dev/null && break
      sleep 1
    done
    echo "README: $line"
    answer="$(eval "$line")"
    echo "$answer"
    grep -q '"predictions"' <<<"$answer" || fail "/predict answered no predictions"
  else
    readme_line "$line"
  fi
done

say "publish the next version"
start="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
readme_command "pulumi config set modelVersion 1.1.0 && pulumi up"
v110="$(digest_of 1.1.0)" || fail "skopeo does not find 1.1.0 after publishing it"
echo "skopeo: $repo:1.1.0 is $v110"
[ "$(registry_writes "$start")" -gt 0 ] || fail "publishing 1.1.0 wrote nothing to the registry"
[ "$(digest_of 1.0.0)" = "$v100" ] || fail "1.0.0 changed when 1.1.0 was published"

say "roll back: nothing is built or pushed"
sleep 1
start="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
readme_command "pulumi config set modelVersion 1.0.0 && pulumi up"
[ "$(digest_of 1.0.0)" = "$v100" ] || fail "the rollback changed 1.0.0's digest"
[ "$(pulumi stack output image_ref)" = "$repo@$v100" ] || fail "after the rollback image_ref is not 1.0.0's digest"
writes="$(registry_writes "$start")"
[ "$writes" -eq 0 ] || fail "the rollback sent $writes writes to the registry; expected none"
[ "$(image_skip_push 1.0.0)" = true ] ||
  fail "the rollback's docker.Image for 1.0.0 did not adopt the tag (skipPush is $(image_skip_push 1.0.0))"
echo "no write reached the registry; the 1.0.0 image resource adopted the tag (skipPush)"

say "a retried up: nothing is pushed"
sleep 1
start="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
readme_says "pulumi up"
echo "README: pulumi up"
pulumi up
writes="$(registry_writes "$start")"
[ "$writes" -eq 0 ] || fail "the retried up sent $writes writes to the registry; expected none"
if [ "$(digest_of 1.0.0)" != "$v100" ] || [ "$(digest_of 1.1.0)" != "$v110" ]; then
  fail "a retried up changed a published digest"
fi
echo "no write reached the registry; 1.0.0 and 1.1.0 unchanged"

say "what consumers read"
readme_command "pulumi stack output repository_uri"

say "destroy: the volume and every version stay"
readme_command "pulumi destroy"
if docker container inspect "$container" >/dev/null 2>&1; then
  fail "pulumi destroy left the registry container"
fi
docker volume inspect "$volume" >/dev/null || fail "pulumi destroy deleted the volume $volume"
# The volume, served by a plain registry (the image the stack ran, kept on destroy).
image="$(pulumi config get localRegistryImage 2>/dev/null || echo registry:2)"
docker run -d --name "$check_container" -p 127.0.0.1:5000:5000 \
  -v "$volume:/var/lib/registry" "$image" >/dev/null
for _ in $(seq 1 30); do
  curl -sf http://127.0.0.1:5000/v2/ >/dev/null && break
  sleep 1
done
auth_args=()
[ "$(digest_of 1.0.0)" = "$v100" ] || fail "after destroy, 1.0.0 is not in the volume as published"
[ "$(digest_of 1.1.0)" = "$v110" ] || fail "after destroy, 1.1.0 is not in the volume as published"
echo "the volume $volume still holds 1.0.0 ($v100) and 1.1.0 ($v110)"
