#!/usr/bin/env bash
# A throwaway OpenSSH sshd on 127.0.0.1 for the SSH bastion tests: no system config,
# no system keys, nothing left behind but the directory it is given.
#
#   scripts/sshd.sh ensure       make sure sshd is installed (apt-get as root), else
#                                say what to install and exit 3
#   scripts/sshd.sh start DIR    generate a host key and a client key pair in DIR,
#                                authorize the client key for the current user, start
#                                `sshd -D -e` on a free loopback port, print KEY=VALUE
#                                lines (SSHD_PORT, SSHD_USER, SSHD_KEY, ...) and return
#   scripts/sshd.sh stop DIR     stop the sshd started in DIR
#
# Exit codes: 0 ok; 1 sshd failed (its log is printed); 2 usage; 3 sshd not installed.
set -euo pipefail

SSHD=${SSHD:-/usr/sbin/sshd}  # sshd re-executes itself, so it wants an absolute path

ensure() {
  [ -x "$SSHD" ] && command -v ssh-keygen >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "sshd.sh: $SSHD not found; installing openssh-server with apt-get" >&2
    if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
          --no-install-recommends openssh-server openssh-client) >/dev/null 2>&1 \
        && [ -x "$SSHD" ]; then
      return 0
    fi
    echo "sshd.sh: apt-get install openssh-server failed; install it by hand" >&2
    exit 3
  fi
  echo "sshd.sh: $SSHD not found: install OpenSSH's server (Debian/Ubuntu: apt-get install openssh-server)" >&2
  exit 3
}

free_port() {  # $PYTHON: the tests pass their interpreter
  "${PYTHON:-python3}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

alive() { [ -s "$1/sshd.pid" ] && kill -0 "$(cat "$1/sshd.pid")" 2>/dev/null; }

start() {
  local dir user use_pam port attempt
  dir=$(cd "$1" && pwd)
  ensure
  user=$(id -un)
  # Key pairs: the server's host key and the client's key, ed25519, no passphrase.
  rm -f "$dir"/ssh_host_ed25519_key* "$dir"/client_ed25519_key*
  ssh-keygen -q -t ed25519 -N '' -C myshift-test-host -f "$dir/ssh_host_ed25519_key"
  ssh-keygen -q -t ed25519 -N '' -C myshift-test-client -f "$dir/client_ed25519_key"
  cp "$dir/client_ed25519_key.pub" "$dir/authorized_keys"
  chmod 600 "$dir/authorized_keys" "$dir/client_ed25519_key" "$dir/ssh_host_ed25519_key"
  # Without PAM, sshd refuses every login to an account whose password is locked ('!'
  # in /etc/shadow, as on many images); PAM's account check lets a key in.
  use_pam=no
  if [ "$(id -u)" = 0 ] && [ -f /etc/pam.d/sshd ] \
      && [ "$(getent shadow "$user" | cut -d: -f2 | cut -c1)" = "!" ]; then
    use_pam=yes
  fi
  # As root sshd drops privileges into this empty directory (Debian's init makes it).
  if [ "$(id -u)" = 0 ]; then mkdir -p /run/sshd && chmod 755 /run/sshd; fi
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    cat >"$dir/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/ssh_host_ed25519_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
StrictModes no
UsePAM $use_pam
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowTcpForwarding local
AllowAgentForwarding no
X11Forwarding no
PrintMotd no
UseDNS no
LogLevel DEBUG1
EOF
    rm -f "$dir/sshd.pid"
    "$SSHD" -t -f "$dir/sshd_config" 2>"$dir/sshd.log" || { cat "$dir/sshd.log" >&2; exit 1; }
    # -D: stay in the foreground of this background job; -e: log to sshd.log.
    nohup "$SSHD" -D -e -f "$dir/sshd_config" >>"$dir/sshd.log" 2>&1 </dev/null &
    # sshd writes the same pid to PidFile once it listens; written now, stop works even
    # if it dies before that.
    echo $! >"$dir/sshd.pid"
    local i
    for ((i = 0; i < 50; i++)); do
      if alive "$dir" && grep -q "Server listening on 127.0.0.1 port $port" "$dir/sshd.log"; then
        ssh-keygen -q -l -E sha256 -f "$dir/ssh_host_ed25519_key.pub" | awk '{print $2}' >"$dir/fingerprint"
        echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/ssh_host_ed25519_key.pub")" >"$dir/known_hosts"
        echo "SSHD_HOST=127.0.0.1"
        echo "SSHD_PORT=$port"
        echo "SSHD_USER=$user"
        echo "SSHD_KEY=$dir/client_ed25519_key"
        echo "SSHD_KNOWN_HOSTS=$dir/known_hosts"
        echo "SSHD_HOST_FINGERPRINT=$(cat "$dir/fingerprint")"
        echo "SSHD_LOG=$dir/sshd.log"
        echo "SSHD_PID=$(cat "$dir/sshd.pid")"
        return 0
      fi
      # Lost the race for the port to another process: try another one.
      if grep -q "Cannot bind any address" "$dir/sshd.log"; then break; fi
      sleep 0.1
    done
    stop "$dir" >/dev/null 2>&1 || true
    grep -q "Cannot bind any address" "$dir/sshd.log" && [ "$attempt" -lt 5 ] && continue
    echo "sshd.sh: sshd did not start; its log:" >&2
    cat "$dir/sshd.log" >&2
    exit 1
  done
}

stop() {
  local dir=$1 pid i
  [ -s "$dir/sshd.pid" ] || return 0
  pid=$(cat "$dir/sshd.pid")
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$dir/sshd.pid"
}

case "${1:-}" in
  ensure) ensure ;;
  start) [ $# -eq 2 ] && [ -d "$2" ] || { echo "usage: $0 start DIR (an existing directory)" >&2; exit 2; }; start "$2" ;;
  stop) [ $# -eq 2 ] || { echo "usage: $0 stop DIR" >&2; exit 2; }; stop "$2" ;;
  *) echo "usage: $0 ensure | start DIR | stop DIR" >&2; exit 2 ;;
esac
