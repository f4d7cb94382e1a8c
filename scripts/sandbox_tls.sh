# TLS to every server (sourced by scripts/sandbox.sh; `up --tls`, kept by later `up`s):
#
# - a test CA made with the openssl CLI ($DIR/tls/ca.crt), one server certificate for localhost
#   and 127.0.0.1 that every server presents, and a client certificate (CN=ghostwatch_cert);
# - PostgreSQL: ssl = on on all three servers; the role ghostwatch_cert logs in by its client
#   certificate only (a `hostssl ... cert` rule; plain TCP is rejected for it) and acts as
#   ghostwatch (its default role), so that the canary table stays ghostwatch's whoever made it;
# - MariaDB: ssl-ca/ssl-cert/ssl-key on both servers; the user ghostwatch_x509 REQUIRE X509;
#   `tls-require on|off` switches require_secure_transport (TCP without TLS refused for all);
# - Redis (redis-tls, B+26): a second server on its tls-port only, client certificates required
#   (tls-auth-clients yes), with a password (requirepass: AUTH must travel encrypted);
# - memcached (memcached-tls, B+27): Debian's memcached is built with TLS (-Z); client
#   certificates required (ssl_verify_mode=2);
# - certificates a client must refuse, for the tests' impostor servers: one from another CA for
#   localhost, one from the right CA for another name (wrong.example), one expired.
# The plain servers and users stay as they are, so every other test runs unchanged beside these.

# B+25 is the package check's agent (scripts/package-check.sh).
REDIS_TLS_PORT=$((PG_PORT_PRIMARY + 26))
MEMCACHED_TLS_PORT=$((PG_PORT_PRIMARY + 27))
TLS_SERVERS="redis-tls memcached-tls"

tls_enabled() { [ -n "${TLS_WANTED:-}" ] || [ -f "$DIR/tls.enabled" ]; }
tls_servers() { if tls_enabled; then echo "$TLS_SERVERS"; fi; }

# sign NAME CA SUBJECT SAN DAYS: a key and a certificate signed by CA (ca or other-ca).
tls_sign() {
  local name=$1 ca=$2 subject=$3 san=$4 days=$5 t="$DIR/tls"
  openssl req -newkey rsa:2048 -nodes -subj "$subject" -keyout "$t/$name.key" -out "$t/$name.csr" 2>/dev/null ||
    die "openssl could not make a key for $name"
  { [ -n "$san" ] && printf 'subjectAltName=%s\n' "$san"; printf 'basicConstraints=CA:FALSE\n'; } >"$t/$name.ext"
  openssl x509 -req -in "$t/$name.csr" -CA "$t/$ca.crt" -CAkey "$t/$ca.key" -CAcreateserial -days "$days" \
    -extfile "$t/$name.ext" -out "$t/$name.crt" 2>/dev/null || die "openssl could not sign $name"
  rm -f "$t/$name.csr" "$t/$name.ext"
  chmod 644 "$t/$name.crt"
  chmod 600 "$t/$name.key"
}

tls_ca_material() {
  local t="$DIR/tls"
  [ -s "$t/ca.crt" ] && [ -s "$t/expired.crt" ] && return 0
  mkdir -p "$t"
  for ca in ca other-ca; do
    openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=ghostwatch sandbox $ca" \
      -addext basicConstraints=critical,CA:TRUE -keyout "$t/$ca.key" -out "$t/$ca.crt" 2>/dev/null ||
      die "openssl could not make the $ca"
    chmod 644 "$t/$ca.crt"
    chmod 600 "$t/$ca.key"
  done
  tls_sign server ca /CN=localhost "DNS:localhost,IP:127.0.0.1" 365
  tls_sign client ca /CN=ghostwatch_cert "" 365
  tls_sign impostor other-ca /CN=localhost "DNS:localhost,IP:127.0.0.1" 365
  tls_sign wrong-name ca /CN=wrong.example "DNS:wrong.example" 365
  tls_sign expired ca /CN=localhost "DNS:localhost,IP:127.0.0.1" 0
  # The servers' key belongs to their user, which PostgreSQL insists on.
  [ "$(id -u)" -eq 0 ] && chown "$SBX_USER" "$t/server.key"
  return 0
}

pg_tls_conf() {  # NAME
  local d="$DIR/$1" t="$DIR/tls" want
  want=$(printf "ssl = on\nssl_cert_file = '%s'\nssl_key_file = '%s'\nssl_ca_file = '%s'\n" \
    "$t/server.crt" "$t/server.key" "$t/ca.crt")
  if ! { [ -f "$d/sandbox_tls.conf" ] && [ "$(cat "$d/sandbox_tls.conf")" = "$want" ]; }; then
    printf '%s\n' "$want" | as_user tee "$d/sandbox_tls.conf" >/dev/null
  fi
  grep -q "sandbox_tls.conf" "$d/postgresql.conf" ||
    echo "include_if_exists = 'sandbox_tls.conf'" | as_user tee -a "$d/postgresql.conf" >/dev/null
  # First match wins: the certificate rules go before initdb's password rules.
  if ! grep -q "ghostwatch_cert" "$d/pg_hba.conf"; then
    { printf 'hostssl all ghostwatch_cert 127.0.0.1/32 cert\nhostnossl all ghostwatch_cert 127.0.0.1/32 reject\n'
      cat "$d/pg_hba.conf"; } >"$d/pg_hba.conf.new"
    chown --reference="$d/pg_hba.conf" "$d/pg_hba.conf.new"
    chmod 600 "$d/pg_hba.conf.new"
    mv "$d/pg_hba.conf.new" "$d/pg_hba.conf"
  fi
  if pg_running "$1"; then as_user "$PG_BIN/pg_ctl" -D "$d" reload >/dev/null; fi
}

pg_tls_role() {
  psql_admin "$PG_PORT_PRIMARY" -d postgres <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ghostwatch_cert') THEN CREATE ROLE ghostwatch_cert LOGIN; END IF;
END $$;
GRANT CREATE, CONNECT ON DATABASE app TO ghostwatch_cert;
GRANT ghostwatch TO ghostwatch_cert;
ALTER ROLE ghostwatch_cert SET role TO ghostwatch;
SQL
}

# Lines for a MariaDB server's [mariadbd] section (maria_conf).
maria_tls_conf() {
  tls_enabled || return 0
  printf 'ssl-ca = %s\nssl-cert = %s\nssl-key = %s\n' "$DIR/tls/ca.crt" "$DIR/tls/server.crt" "$DIR/tls/server.key"
}

maria_tls_user() {
  maria_root maria-primary <<SQL
CREATE USER IF NOT EXISTS 'ghostwatch_x509'@'127.0.0.1' IDENTIFIED BY '$(agent_password)' REQUIRE X509;
GRANT SELECT, INSERT, UPDATE, CREATE ON \`ghostwatch\`.* TO 'ghostwatch_x509'@'127.0.0.1';
GRANT SLAVE MONITOR ON *.* TO 'ghostwatch_x509'@'127.0.0.1';
SQL
}

# tls-require on|off: require_secure_transport on both MariaDB servers (over their sockets,
# which it exempts).
maria_tls_require() {
  case "${1:-}" in on) v=ON ;; off) v=OFF ;; *) die "tls-require: expected on or off, got '${1:-}'" ;; esac
  tls_enabled || die "tls-require: the sandbox has no TLS; run 'up --tls' first"
  for s in $MARIA_SERVERS; do maria_root "$s" -e "SET GLOBAL require_secure_transport = $v"; done
}

redis_tls_start() {
  pid_running redis-tls && return 0
  local t="$DIR/tls"
  # The password from a config file: on the command line it would show in ps.
  printf 'requirepass %s\n' "$(agent_password)" >"$DIR/redis-tls.conf"
  chmod 600 "$DIR/redis-tls.conf"
  [ "$(id -u)" -eq 0 ] && chown "$SBX_USER" "$DIR/redis-tls.conf"
  as_user setsid redis-server "$DIR/redis-tls.conf" --bind 127.0.0.1 --port 0 --tls-port "$REDIS_TLS_PORT" \
    --tls-cert-file "$t/server.crt" --tls-key-file "$t/server.key" --tls-ca-cert-file "$t/ca.crt" \
    --tls-auth-clients yes --save '' --appendonly no --daemonize yes --pidfile "$DIR/redis-tls.pid" \
    --logfile "$DIR/redis-tls.log" --dir "$DIR" --proc-title-template "{title} {listen-addr} $DIR/redis-tls" \
    </dev/null >/dev/null 2>&1 || die "redis-tls failed; see $DIR/redis-tls.log"
  wait_pid_file redis-tls
}

memcached_tls_start() {
  pid_running memcached-tls && return 0
  local t="$DIR/tls"
  as_user setsid memcached -d -l 127.0.0.1 -p "$MEMCACHED_TLS_PORT" -U 0 -m 16 -P "$DIR/memcached-tls.pid" \
    -u "$(run_user)" -Z -o "ssl_chain_cert=$t/server.crt,ssl_key=$t/server.key,ssl_ca_cert=$t/ca.crt,ssl_verify_mode=2" \
    </dev/null >"$DIR/memcached-tls.log" 2>&1 || die "memcached-tls failed; see $DIR/memcached-tls.log"
  wait_pid_file memcached-tls
}

tls_up() {
  tls_enabled || return 0
  for s in $PG_SERVERS; do pg_tls_conf "$s"; done
  pg_tls_role
  maria_tls_user
  redis_tls_start
  memcached_tls_start
}

tls_env() {
  tls_enabled || return 0
  local t="$DIR/tls" pg_tls mysql_tls
  pg_tls="dbname=app user=ghostwatch_cert connect_timeout=2 sslmode=verify-full sslrootcert=$t/ca.crt sslcert=$t/client.crt sslkey=$t/client.key"
  mysql_tls="ssl-mode=verify_identity&ssl-ca=$t/ca.crt&ssl-cert=$t/client.crt&ssl-key=$t/client.key"
  cat <<ENV
export GW_TLS_DIR='$t'
export GW_PG_TLS_PRIMARY_DSN='host=localhost port=$PG_PORT_PRIMARY $pg_tls'
export GW_PG_TLS_REPLICA1_DSN='host=localhost port=$PG_PORT_REPLICA1 $pg_tls'
export GW_PG_TLS_REPLICA2_DSN='host=localhost port=$PG_PORT_REPLICA2 $pg_tls'
export GW_MARIA_TLS_PRIMARY_DSN='mysql://ghostwatch_x509@127.0.0.1:$MARIA_PORT_PRIMARY/?$mysql_tls'
export GW_MARIA_TLS_REPLICA_DSN='mysql://ghostwatch_x509@127.0.0.1:$MARIA_PORT_REPLICA/?$mysql_tls'
export GW_REDIS_TLS_ADDR='127.0.0.1:$REDIS_TLS_PORT'
export GW_MEMCACHED_TLS_ADDR='127.0.0.1:$MEMCACHED_TLS_PORT'
ENV
}
