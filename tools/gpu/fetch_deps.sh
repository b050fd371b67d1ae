#!/usr/bin/env bash
# Downloads, on a Debian 12 machine, the .debs that a GPU machine's image lacks to build glm4-actor (CAF 0.17,
# Boost 1.81 with Boost.JSON, toml++, Catch2 v2, CLI11, PCRE2) into .gpu-deps/ (git-ignored, about 14 MB), for
# the device tool to carry; tools/gpu/session.sh unpacks them under /tmp/deps there, never into /.
set -euo pipefail
cd "$(dirname "$0")/../.."
packages=(
  libcaf-dev libcaf-core0.17 libcaf-io0.17 libcaf-openssl0.17
  libboost1.81-dev libboost-json1.81-dev libboost-json1.81.0
  libtomlplusplus-dev libtomlplusplus3 catch2 libcli11-dev
  libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3
)
rm -rf .gpu-deps
mkdir -p .gpu-deps
(cd .gpu-deps && apt-get download "${packages[@]}")
du -sh .gpu-deps
