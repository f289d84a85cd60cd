#!/usr/bin/env bash
# Refreshes crates/leadscore-core/data/free-email-domains.txt from the
# `free-email-domains` npm package (MIT, maintained list of free-mail
# providers). Disposable domains come from the `mailchecker` crate instead:
# bump it in Cargo.toml to refresh them.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent free-email-domains >/dev/null && tar xzf free-email-domains-*.tgz)
version=$(python3 -c "import json,sys; print(json.load(open('$tmp/package/package.json'))['version'])")
out=crates/leadscore-core/data/free-email-domains.txt
{
  echo "# free-email-domains (npm, MIT, Kiko Beats), version $version. Refresh: scripts/update-email-domains.sh"
  python3 -c "import json; print('\n'.join(sorted({d.strip().lower() for d in json.load(open('$tmp/package/domains.json')) if d.strip()})))"
} > "$out"
echo "wrote $(($(wc -l < "$out") - 1)) domains (version $version) to $out"
