#!/bin/sh
# Sourced by every backup/restore step: the credential files the programs read, written from the mounted Secrets.
# Nothing secret enters the environment (PGUSER, the role's name, is exported).
# - libpq (pg_dump, psql, pg_restore) reads PGPASSFILE, which must be in pgpass format
#   (host:port:database:user:password, ":" and "\" escaped by "\") and mode 0600 (libpq ignores a file with group
#   or world access): a Secret key mounted as it is can be neither, so the file is written into the pod's /tmp.
# - aws-cli reads AWS_SHARED_CREDENTIALS_FILE, an ini profile; the Secret holds the bare keys (ACCESS_KEY_ID,
#   ACCESS_SECRET_KEY, shared with CloudNativePG's barman object store), so that file is written too.

# the libpq password file from $DATABASE_CREDENTIALS_DIR/{username,password} (a step that dials PostgreSQL)
pgpass() {
  [ -n "${DATABASE_CREDENTIALS_DIR:-}" ] || return 0
  PGUSER=$(cat "$DATABASE_CREDENTIALS_DIR/username") || return 1
  export PGUSER
  pw=$(cat "$DATABASE_CREDENTIALS_DIR/password") || return 1
  case $pw in
    *'
'*) echo "the database password holds a line break: libpq's password file cannot carry it" >&2; return 1 ;;
  esac
  (umask 077 && printf '*:*:*:*:%s\n' "$(printf '%s' "$pw" | sed 's/[\\:]/\\&/g')" > "$PGPASSFILE")
}

# the aws-cli credentials file from $S3_CREDENTIALS_DIR/{ACCESS_KEY_ID,ACCESS_SECRET_KEY} (none: pod identity)
aws_credentials() {
  [ -n "${S3_CREDENTIALS_DIR:-}" ] || return 0
  id=$(cat "$S3_CREDENTIALS_DIR/ACCESS_KEY_ID") && key=$(cat "$S3_CREDENTIALS_DIR/ACCESS_SECRET_KEY") || return 1
  mkdir -p "$(dirname "$AWS_SHARED_CREDENTIALS_FILE")" || return 1
  (umask 077 && printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$id" "$key" \
    > "$AWS_SHARED_CREDENTIALS_FILE")
}
