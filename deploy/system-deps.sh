#!/usr/bin/env bash
# Installs the system packages Chairside's tests and demo need, when they are missing:
# python3-venv, mosquitto (MQTT broker the tests start), chromium + chromium-driver
# (headless browser tests), poppler-utils (pdftotext, pdfinfo, pdftoppm: the PDF report
# tests), nginx, haproxy and systemd-analyze (the deploy kit's tests), postgresql (the server programs:
# initdb, postgres, pg_dump, pg_restore; the tests run private servers of their own from them,
# never the one the package may start), socat and ser2net (the terminal servers of the serial
# network tests: raw TCP and RFC 2217; the tests start their own, never the package's service),
# nats-server and rabbitmq-server (three-node NATS and RabbitMQ clusters with MQTT: the
# clustered-broker tests start their own nodes, never the package's service).
# Uses apt-get (Debian/Ubuntu); elsewhere it says what to install.
set -euo pipefail

missing=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }

python3 -c "import venv, ensurepip" >/dev/null 2>&1 || missing+=(python3-venv)
have mosquitto || missing+=(mosquitto)
have chromium || missing+=(chromium)
have chromedriver || missing+=(chromium-driver)
have openssl || missing+=(openssl)
have pdftotext || missing+=(poppler-utils)
have nginx || missing+=(nginx)                     # the TLS proxy example (tests/test_deploy.py)
have haproxy || missing+=(haproxy)                 # the leader/standby proxy example (tests/test_ha.py)
have systemd-analyze || missing+=(systemd)         # checks deploy/chairside.service
have socat || missing+=(socat)                     # tests/test_serial_network.py: raw TCP bridge
have ser2net || missing+=(ser2net)                 # ... and an RFC 2217 server
have nats-server || missing+=(nats-server)         # tests/nats_cluster.py: the clustered broker
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || missing+=(rabbitmq-server)  # tests/rabbitmq_cluster.py
# PostgreSQL's server programs (tests/pg_support.py); pg_config on PATH may be the client's alone
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)

[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "Chairside needs these system packages, and apt-get is not available to install them:" >&2
  echo "  ${missing[*]}" >&2
  echo "Install them with this system's package manager, then run make again." >&2
  exit 1
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
  else
    echo "Installing ${missing[*]} needs root, and sudo is not available. Run as root:" >&2
    echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

echo "Installing system packages: ${missing[*]}"
$sudo apt-get update -qq
# The packages' own services are not needed (the tests start their own servers): on a machine
# without a policy of its own, they are not started during the installation (a container without
# an init system would fail some postinst scripts starting them).
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  trap '$sudo rm -f "$policy"' EXIT
fi
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
