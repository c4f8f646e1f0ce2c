#!/usr/bin/env bash
# Installs the Debian packages kesm builds and tests with, only those missing.
#   scripts/install-deps.sh        the build and test set (the default)
#   scripts/install-deps.sh fuzz   the default set plus clang and libFuzzer (docs/fuzzing.md)
set -euo pipefail

PACKAGES=(
  g++ cmake ninja-build pkg-config make
  librdkafka-dev prometheus-cpp-dev libyaml-cpp-dev
  # Boost 1.81 for Boost.JSON and Boost.URL (1.74, Debian's default, has neither); it
  # replaces libboost-dev 1.74 if that is installed.
  libboost1.81-dev libboost-system1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev # TLS to the Kubernetes API server (Boost.Asio's OpenSSL streams)
  catch2 clang-format curl
  openssl # certificates for the e2e broker (tests/e2e/kafka.sh) and the TLS client and HTTPS function tests; their s_server peer
  # The container image tests (tests/image/image.sh): podman builds and runs deploy/Dockerfile
  # as root with the kernel's overlayfs (no uidmap or fuse-overlayfs needed), with runc (crun
  # fails on these hybrid cgroups); debootstrap makes the base image; skopeo and jq read the
  # saved image's config.
  podman runc debootstrap skopeo jq
  # Observability tests (issue 16): promtool checks the rules and a live scrape, a real
  # Prometheus server scrapes kesm in the e2e, headless Chromium loads the status page.
  prometheus chromium
)

case "${1:-}" in
"") ;;
fuzz)
  # clang-14 and its runtime libraries: libFuzzer, ASan, UBSan (bookworm's default clang).
  PACKAGES+=(clang-14 libclang-rt-14-dev)
  ;;
*)
  echo "usage: $0 [fuzz]" >&2
  exit 2
  ;;
esac

# The end-to-end tests run a real Apache Kafka broker (tests/e2e/kafka.sh): Java 17+ and
# Maven. A JDK installed outside Debian's packages (e.g. Temurin) counts if it is on PATH.
if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
  PACKAGES+=(openjdk-17-jre-headless maven)
fi

# The Lambda runtimes of the e2e suite (tests/e2e/lambda/runtimes.sh) and hadolint
# (tests/image/image.sh) make a Python venv; Debian ships venv's ensurepip only in
# python3-venv. (The runtimes' Go >= 1.26.6 is not in Debian 12: without go those tests show
# as skipped.)
if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip' 2>/dev/null; then
  PACKAGES+=(python3 python3-venv)
fi

# The Helm chart's tests (tests/k8s/chart_test.py) read the rendered manifests with PyYAML.
if ! command -v python3 >/dev/null || ! python3 -c 'import yaml' 2>/dev/null; then
  PACKAGES+=(python3 python3-yaml)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
