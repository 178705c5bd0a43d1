#!/usr/bin/env bash
# Installs the Debian packages the tests use, when missing (espeak-ng: synthetic speech;
# time: /usr/bin/time -v for memory measurements; redis-server and postgresql: real servers the
# integration tests start and stop themselves (tests/services.py), not system services;
# sip-tester: sipp for SIP calls; chromium: WebRTC browser calls).
set -euo pipefail

packages=(espeak-ng time redis-server postgresql chromium sip-tester)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null; then
    sudo=(sudo)
else
    echo "missing system packages: ${missing[*]} (install them as root: apt-get install ${missing[*]})" >&2
    exit 1
fi
echo "installing system packages: ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
