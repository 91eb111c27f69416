#!/bin/sh
# Step 1 of the backup CronJob (postgres image): pg_dump in custom format (compressed) into $BACKUP_DIR.
# It always exits 0 and leaves its outcome in $BACKUP_DIR (name + ok, or error), so that step 2 can record a
# failure in the object store and the Prometheus Pushgateway before the Job fails.
set -u
. "$(dirname "$0")/credentials.sh"
ts=$(date -u +%Y%m%dT%H%M%SZ)
name="${PGDATABASE}-${ts}.dump"
start=$(date +%s)
if pgpass 2> "$BACKUP_DIR/error" &&
  pg_dump --format=custom --compress="${COMPRESS_LEVEL:-6}" --no-password --file "$BACKUP_DIR/$name.partial" 2>> "$BACKUP_DIR/error"; then
  mv "$BACKUP_DIR/$name.partial" "$BACKUP_DIR/$name"
  echo "$name" > "$BACKUP_DIR/name"
  echo $(( $(date +%s) - start )) > "$BACKUP_DIR/dump-seconds"
  touch "$BACKUP_DIR/ok"
  echo "pg_dump: $name, $(wc -c < "$BACKUP_DIR/$name") bytes in $(cat "$BACKUP_DIR/dump-seconds")s"
else
  rm -f "$BACKUP_DIR/$name.partial"
  echo "pg_dump of $PGDATABASE on $PGHOST:$PGPORT failed:" >&2
  cat "$BACKUP_DIR/error" >&2
fi
exit 0
