#!/usr/bin/env bash
# Debian 12 packages the demo cluster and the tests need. Idempotent: installs
# only what is missing (apt-get update only when something is).
set -euo pipefail
# chromium: Debian's browser, driven by Playwright in the browser tests (no browser download).
# postgresql (15): the ledger's PostgreSQL tests and benchmark start a private server from
# /usr/lib/postgresql/15/bin (hub/demo/devtools/pgserver.py); Debian's own cluster is not used.
packages=(munge mariadb-server mariadb-client slurmctld slurmd slurmdbd slurm-client sudo python3-venv python3-dev gcc chromium postgresql)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# The packages' own services are not used (we start our own daemons); keep them from starting.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d.hpchub
chmod +x /usr/sbin/policy-rc.d.hpchub
if [ ! -e /usr/sbin/policy-rc.d ]; then ln -s /usr/sbin/policy-rc.d.hpchub /usr/sbin/policy-rc.d; created=1; fi
apt-get install -y -q --no-install-recommends "${missing[@]}"
if [ "${created:-0}" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
rm -f /usr/sbin/policy-rc.d.hpchub
