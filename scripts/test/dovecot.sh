# Throwaway Dovecot servers on loopback for the test scripts, sourced by
# scripts/test/mailbox.sh and scripts/test/webmail.sh. The caller sets W (a
# scratch folder), DOVECOT_PIDS=() and fail(); a server with an IMAPS port
# reads its certificate from $W/server.pem and $W/server.key. Every server
# has one user, alice, password "secret", with a Maildir under
# $W/dovecot-NAME/home/alice.
if ! command -v dovecot > /dev/null; then
  echo "installing dovecot-imapd with apt…" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd > /dev/null
fi
if [ "$(id -u)" = 0 ]; then
  MAIL_UID=nobody; MAIL_GID=nogroup; LOGIN_USER=dovenull; INTERNAL_USER=dovecot
else
  MAIL_UID=$(id -un); MAIL_GID=$(id -gn); LOGIN_USER=$MAIL_UID; INTERNAL_USER=$MAIL_UID
fi
# dovecot_conf NAME PORT [IMAPS_PORT] [CAPABILITIES]
dovecot_conf() {
  local d="$W/dovecot-$1" ssl=no imaps=0
  [ -n "${3:-}" ] && { ssl=yes; imaps=$3; }
  mkdir -p "$d/run" "$d/state" "$d/home/alice"
  printf 'alice:{PLAIN}secret::::::\n' > "$d/users"
  cat > "$d/dovecot.conf" <<CONF
protocols = imap
listen = 127.0.0.1
base_dir = $d/run
state_dir = $d/state
log_path = $d/dovecot.log
ssl = $ssl
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = $LOGIN_USER
default_internal_user = $INTERNAL_USER
first_valid_uid = 1
passdb {
driver = passwd-file
args = scheme=PLAIN username_format=%u $d/users
}
userdb {
driver = static
args = uid=$MAIL_UID gid=$MAIL_GID home=$d/home/%u
}
mail_location = maildir:~/Maildir
service imap-login {
chroot =
inet_listener imap {
  address = 127.0.0.1
  port = $2
}
inet_listener imaps {
  address = 127.0.0.1
  port = $imaps
}
}
service anvil {
chroot =
}
CONF
  if [ "$ssl" = yes ]; then
    printf 'ssl_cert = <%s\nssl_key = <%s\n' "$W/server.pem" "$W/server.key" >> "$d/dovecot.conf"
  fi
  if [ -n "${4:-}" ]; then
    printf 'protocol imap {\n  imap_capability = %s\n}\n' "$4" >> "$d/dovecot.conf"
  fi
}
start_dovecot() {
  local d="$W/dovecot-$1"
  chown -R "$MAIL_UID:$MAIL_GID" "$d/home" 2> /dev/null || true
  dovecot -F -c "$d/dovecot.conf" &
  DOVECOT_PIDS+=($!)
  for _ in $(seq 1 100); do
    (exec 3<> "/dev/tcp/127.0.0.1/$2") 2> /dev/null && return 0
    sleep 0.1
  done
  cat "$d/dovecot.log" >&2; fail "dovecot $1 did not start"
}
stop_dovecot() { kill "${DOVECOT_PIDS[$1]}"; wait "${DOVECOT_PIDS[$1]}" 2> /dev/null || true; }
