#!/usr/bin/env bash
# The system programs the tests run against, as real peers: Mosquitto (MQTT broker),
# SIPp (SIP peer, Debian package sip-tester), Kamailio (SIP proxy, with its TLS module
# kamailio-tls-modules), tmux (the real-terminal
# test of the demo), Chromium (headless, the browser test of `cti supervisor --web`), and
# for the voice path (tests marked media): baresip (Debian baresip-core, the softphone),
# espeak-ng (spoken prompts) and sox (audio files).
# Installs what is missing with apt-get when run as root; otherwise names what is missing
# and fails, so a test never skips for want of its peer.
set -euo pipefail

declare -A pkg_of=([mosquitto]=mosquitto [sipp]=sip-tester [kamailio]=kamailio [tmux]=tmux [chromium]=chromium
                   [baresip]=baresip-core [espeak-ng]=espeak-ng [sox]=sox)
missing=()
for cmd in "${!pkg_of[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${pkg_of[$cmd]}")
done
# Kamailio's TLS module (the proxy over TLS in front of the line) is a file, not a command.
compgen -G '/usr/lib/*/kamailio/modules/tls.so' >/dev/null || [ -e /usr/lib/kamailio/modules/tls.so ] \
  || missing+=(kamailio-tls-modules)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "missing system packages for the tests: ${missing[*]}" >&2
  echo "install them (sudo apt-get install ${missing[*]}) or run make test as root" >&2
  exit 1
fi
echo "installing ${missing[*]} from Debian" >&2
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
# Where systemd runs, Debian's kamailio starts a system proxy on port 5060 at install; the
# tests start their own on 127.0.0.1, so stop that one and keep it from starting at boot.
if [[ " ${missing[*]} " == *" kamailio "* ]] && [ -d /run/systemd/system ]; then
  systemctl disable --now kamailio.service >&2 || true
fi
