#!/usr/bin/env bash
# The cores do no I/O: fail when a core depends, even indirectly, on a web, database, mail,
# Redis or network-runtime crate.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for core in kernel auth-core notify-core portfolio-core chat-core media-core scheduler-core; do
  for forbidden in actix-web actix-http mongodb bson fred lettre reqwest rusqlite hyper mio tokio; do
    path=$(cargo tree -q -e normal -p "$core" -i "$forbidden" 2>/dev/null || true)
    if [ -n "$path" ]; then
      echo "architecture violation: $core depends on $forbidden:" >&2
      echo "$path" | head -5 >&2
      status=1
    fi
  done
done
[ "$status" -eq 0 ] && echo "cores are free of I/O crates"
exit "$status"
