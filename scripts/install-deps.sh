#!/usr/bin/env bash
# Installs the Debian packages kesm builds and tests with, only those missing.
set -euo pipefail

PACKAGES=(
  g++ cmake ninja-build pkg-config make
  librdkafka-dev libboost-dev libboost-system-dev prometheus-cpp-dev libyaml-cpp-dev
  catch2 clang-format curl
)

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
