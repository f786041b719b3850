#!/usr/bin/env bash
# Runs gatehouse's whole test suite: formatting, vet, the race-enabled unit
# and integration tests (real listeners on 127.0.0.1, real openssl and
# curl), then each fuzz target for a bounded time.
#
# Installs what the tests need (scripts/packages.txt) when it is missing
# and this runs as root, as on a fresh CI machine.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME="${FUZZTIME:-10s}"

# Debian packages the tests use, one per line in scripts/packages.txt
# (comments after '#'). Missing ones are installed with one apt-get update
# and one apt-get install when this runs as root, as on a fresh CI machine.
need=()
while read -r pkg bin _; do
  [ -z "$pkg" ] && continue
  bin="${bin:-$pkg}"
  if [ "$bin" = "-" ]; then
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  else
    command -v "$bin" >/dev/null 2>&1 || [ -x "$bin" ] || need+=("$pkg")
  fi
done < <(sed -e 's/#.*//' scripts/packages.txt)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing ${need[*]}"
    apt-get update -qq
    # policy-rc.d keeps the packages' own services from starting: the
    # tests start every server they need themselves, on loopback.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
  else
    echo "missing Debian packages ${need[*]}: install them (the tests start these real servers and tools)" >&2
    exit 1
  fi
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "not gofmt'ed:" >&2; echo "$unformatted" >&2; exit 1
fi

echo "== go vet"
go vet ./...

echo "== go build (default, pure Go; and -tags pkcs11, cgo)"
go build -o /dev/null ./cmd/gatehouse
go build -tags pkcs11 -o /dev/null ./cmd/gatehouse

echo "== go test -race"
go test -race -count=1 -timeout 15m ./...

echo "== go test ./internal/pki on PostgreSQL (the CA suite again, every CA's inventory in a real PostgreSQL)"
GATEHOUSE_TEST_STORE=postgres go test -count=1 -timeout 5m ./internal/pki

echo "== go test -race -tags pkcs11 (SoftHSM2 token tests)"
# Only the packages with pkcs11-tagged tests, and only those tests
# (named *PKCS11* or *Token*): the rest ran above.
pkcs11_pkgs=$(grep -l '^//go:build pkcs11' $(git ls-files '*_test.go' 2>/dev/null || find . -name '*_test.go') | xargs -n1 dirname | sort -u | sed 's|^|./|')
go vet -tags pkcs11 ./...
go test -race -count=1 -timeout 10m -tags pkcs11 -run 'PKCS11|Token' $pkcs11_pkgs

echo "== fuzz (${FUZZTIME} each)"
# Every Fuzz target in the tree, each run on its own for FUZZTIME.
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "-- $pkg $target"
    out=$(mktemp)
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" >"$out" 2>&1; then
      # A found input is a failure. The go command's own "context deadline
      # exceeded" when a worker is slow to stop at -fuzztime is not: run
      # that target once more, and fail if it happens again.
      if grep -q 'Failing input written' "$out" || ! grep -q 'context deadline exceeded' "$out" ||
         ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" >"$out" 2>&1; then
        grep -v '^fuzz: elapsed' "$out" | tail -40; rm -f "$out"; exit 1
      fi
    fi
    tail -3 "$out"; rm -f "$out"
  done
done
echo "== all tests passed"
