# Helpers the bench scripts share; sourced, not run.

# A free TCP port on loopback.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Installs the Debian package $1 when the command $2 (default: $1) is missing.
ensure_package() {
  local package="$1" command="${2:-$1}"
  if ! command -v "$command" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$command" ]; then
    echo "installing $package"
    if [ "$(id -u)" -eq 0 ]; then apt-get install -y -qq "$package" >/dev/null; else sudo apt-get install -y -qq "$package" >/dev/null; fi
  fi
}

# Prints "req/s p50 p99" from wrk --latency output.
summarise() {
  awk '/Requests\/sec/ {rps=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2} END {printf "%10s %10s %10s\n", rps, p50, p99}'
}
