#!/usr/bin/env bash
# The whole test suite. Installs what the tests need when it is missing (Debian packages via
# apt-get, PyPI tools via pip), checks formatting and lints, then runs every test.
# Usage: tests/run.sh            (CI runs exactly this through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

# program -> Debian package that provides it
declare -A PKG=(
  [openssl]=openssl [htpasswd]=apache2-utils [skopeo]=skopeo [podman]=podman
  [buildah]=buildah [docker-registry]=docker-registry [docker-compose]=docker-compose
  [curl]=curl [wrk]=wrk [kubectl]=kubernetes-client [shellcheck]=shellcheck [kill]=procps [dockerd]=docker.io [jq]=jq
  [mawk]=mawk [gawk]=gawk [busybox]=busybox
)
missing=()
for prog in "${!PKG[@]}"; do
  command -v "$prog" >/dev/null 2>&1 || missing+=("${PKG[$prog]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "tests/run.sh: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# PyPI tools (pinned to the version the tests were written against)
if ! command -v kubernetes-validate >/dev/null 2>&1; then
  echo "tests/run.sh: installing kubernetes-validate (PyPI)"
  python3 -m pip install --quiet kubernetes-validate==1.37.0 \
    || python3 -m pip install --quiet --break-system-packages kubernetes-validate==1.37.0
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
  hash -r
fi
# PyYAML: the YAML 1.1 reader (docker-compose's) the deploy tests parse generated files with.
if ! python3 -c 'import yaml' >/dev/null 2>&1; then
  echo "tests/run.sh: installing PyYAML (PyPI)"
  python3 -m pip install --quiet PyYAML==6.0.3 \
    || python3 -m pip install --quiet --break-system-packages PyYAML==6.0.3
fi

echo "tests/run.sh: cargo fmt --check"
cargo fmt --check
echo "tests/run.sh: cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "tests/run.sh: cargo test"
cargo test --all-targets
