#!/usr/bin/env bash
# Make sure MariaDB (MySQL) and PostgreSQL answer on 127.0.0.1; start them when they
# are installed but down; otherwise say exactly what to install. Exit 1 if unusable.
set -u

mysql_up() { mariadb-admin --protocol=tcp -h 127.0.0.1 -P 3306 -u root --connect-timeout=2 ping >/dev/null 2>&1 \
  || mysqladmin --protocol=tcp -h 127.0.0.1 -P 3306 -u root --connect-timeout=2 ping >/dev/null 2>&1; }
pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q >/dev/null 2>&1; }

wait_for() {  # wait_for NAME CHECK-FUNCTION SECONDS
  local i
  for ((i = 0; i < $3 * 5; i++)); do "$2" && return 0; sleep 0.2; done
  return 1
}

status=0
if mysql_up; then
  echo "MySQL (MariaDB): reachable on 127.0.0.1:3306"
elif [ -x /usr/sbin/mariadbd ]; then
  echo "MySQL (MariaDB): down, starting it"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd >/dev/null 2>&1 \
    || (service mariadb start || service mysql start) >/dev/null 2>&1
  if wait_for MariaDB mysql_up 60; then echo "MySQL (MariaDB): started"; else
    echo "MySQL (MariaDB): failed to start; see the server log (journalctl or /var/log/mysql)" >&2; status=1; fi
else
  echo "MySQL (MariaDB) is not installed: apt-get install mariadb-server (root may log in over TCP with an empty password, or set MYSQL_PASSWORD)" >&2
  status=1
fi

if pg_up; then
  echo "PostgreSQL: reachable on 127.0.0.1:5432"
elif command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  echo "PostgreSQL: down, starting it"
  for version in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
  done
  if wait_for PostgreSQL pg_up 60; then echo "PostgreSQL: started"; else
    echo "PostgreSQL: failed to start; see /var/log/postgresql" >&2; status=1; fi
else
  echo "PostgreSQL is not installed: apt-get install postgresql (the warehouse stand-in needs user postgres with trust auth on 127.0.0.1)" >&2
  status=1
fi
exit $status
