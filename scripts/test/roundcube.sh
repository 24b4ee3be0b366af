# A throwaway Roundcube (Debian's roundcube-core 1.6) on loopback for the
# test scripts: its own config folder and SQLite database under $W, served
# by PHP's built-in server. Sourced by scripts/test/webmail.sh; the caller
# sets W and fail(). Installs the Debian packages when they are missing.
if [ ! -f /usr/share/roundcube/index.php ] || ! command -v php > /dev/null; then
  echo "installing roundcube-core and roundcube-sqlite3 with apt…" >&2
  pkgs=(roundcube-core roundcube-sqlite3 php-cli php-sqlite3 php-cgi)
  (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" \
    || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}")) > /dev/null
fi
ROUNDCUBE=/usr/share/roundcube

# roundcube_conf IMAP_PORT [PAGE_SIZE]: writes $W/roundcube/config and an
# empty database. Only defaults.inc.php and mimetypes.php come from the
# package; nothing under /etc/roundcube is read or changed.
roundcube_conf() {
  local d="$W/roundcube"
  mkdir -p "$d/config" "$d/logs" "$d/temp"
  ln -sf /etc/roundcube/defaults.inc.php /etc/roundcube/mimetypes.php "$d/config/"
  cat > "$d/config/config.inc.php" <<PHP
<?php
\$config = [];
\$config['db_dsnw'] = 'sqlite:///$d/roundcube.db?mode=0640';
\$config['imap_host'] = '127.0.0.1:$1';
\$config['smtp_host'] = '';
\$config['des_key'] = '$(head -c 18 /dev/urandom | base64 | tr -d '/+=' | head -c 24)';
\$config['log_dir'] = '$d/logs/';
\$config['temp_dir'] = '$d/temp/';
\$config['skin'] = 'elastic';
\$config['plugins'] = [];
\$config['mail_pagesize'] = ${2:-50};
\$config['login_rate_limit'] = 0;
\$config['session_lifetime'] = 120;
\$config['enable_spellcheck'] = false;
\$config['support_url'] = '';
PHP
  # The package has no initdb.sh: load the schema it ships with PHP's PDO.
  php -r '(new PDO("sqlite:" . $argv[1]))->exec(file_get_contents($argv[2])) !== false or exit(1);' \
    "$d/roundcube.db" "$ROUNDCUBE/SQL/sqlite.initial.sql" > "$d/initdb.log" 2>&1 \
    || { cat "$d/initdb.log" >&2; fail "Roundcube's database could not be created"; }
}

# start_roundcube PORT: serves Roundcube on 127.0.0.1:PORT; sets ROUNDCUBE_PID.
start_roundcube() {
  local d="$W/roundcube"
  ROUNDCUBE_CONFIG_DIR="$d/config" php -S "127.0.0.1:$1" -t "$ROUNDCUBE" > "$d/php.log" 2>&1 &
  ROUNDCUBE_PID=$!
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$1/" 2> /dev/null && return 0
    sleep 0.1
  done
  cat "$d/php.log" >&2; fail "Roundcube did not start"
}
