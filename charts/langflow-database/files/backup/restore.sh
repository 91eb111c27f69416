#!/bin/sh
# Step 2 of the restore Job (postgres image): restore the dump into $PGDATABASE in one transaction, as the
# application role (objects end up owned by it); existing objects of the dump are dropped first.
set -eu
# a fresh cluster may still be starting: wait for the server (bounded by the Job's activeDeadlineSeconds)
i=0
until pg_isready -q; do
  i=$((i + 1)); [ "$i" -le 120 ] || { echo "database $PGHOST:$PGPORT not ready" >&2; exit 1; }
  sleep 5
done
pg_restore --list "$BACKUP_DIR/restore.dump" > /dev/null
start=$(date +%s)
pg_restore --dbname "$PGDATABASE" --no-password --clean --if-exists --no-owner --no-privileges \
  --single-transaction --exit-on-error "$BACKUP_DIR/restore.dump"
echo "restored $(wc -c < "$BACKUP_DIR/restore.dump") bytes into $PGDATABASE in $(( $(date +%s) - start ))s"
