#!/bin/sh
# Step 2 of the backup CronJob (aws-cli image): upload the dump to s3://$S3_BUCKET/$S3_PREFIX/, prune dumps older
# than $RETENTION_DAYS (by the UTC timestamp in their names; the newest dump is always kept), write
# $S3_PREFIX/_status/last-{success,failure}.json and push metrics to $PUSHGATEWAY_URL when set.
# Exits non-zero when the dump or the upload failed.
set -u
. "$(dirname "$0")/credentials.sh"
aws_credentials || { echo "backup FAILED: could not write the S3 credentials file" >&2; exit 1; }
s3() { if [ -n "${S3_ENDPOINT:-}" ]; then aws --endpoint-url "$S3_ENDPOINT" "$@"; else aws "$@"; fi; }
now() { date -u +%s; }
dest="s3://$S3_BUCKET/$S3_PREFIX"
report() {  # report success|failure <size> <message>
  outcome=$1 size=$2 msg=$3 ok=0
  [ "$outcome" = success ] && ok=1
  printf '{"status":"%s","timestamp":%s,"database":"%s","object":"%s","size_bytes":%s,"message":"%s"}\n' \
    "$outcome" "$(now)" "$PGDATABASE" "${name:-}" "$size" "$(printf '%s' "$msg" | tr -c '[:print:]' ' ' | tr '"\\' "''")" > "$BACKUP_DIR/status.json"
  s3 s3 cp --only-show-errors "$BACKUP_DIR/status.json" "$dest/_status/last-$outcome.json" || echo "could not write the status object" >&2
  if [ -n "${PUSHGATEWAY_URL:-}" ]; then
    {
      echo "# TYPE langflow_database_backup_last_run_success gauge"
      echo "langflow_database_backup_last_run_success $ok"
      echo "# TYPE langflow_database_backup_last_run_timestamp_seconds gauge"
      echo "langflow_database_backup_last_run_timestamp_seconds $(now)"
      if [ "$ok" = 1 ]; then
        echo "# TYPE langflow_database_backup_last_success_timestamp_seconds gauge"
        echo "langflow_database_backup_last_success_timestamp_seconds $(now)"
        echo "# TYPE langflow_database_backup_size_bytes gauge"
        echo "langflow_database_backup_size_bytes $size"
      fi
    } > "$BACKUP_DIR/metrics.prom"
    curl -fsS --max-time 10 --data-binary "@$BACKUP_DIR/metrics.prom" \
      "$PUSHGATEWAY_URL/metrics/job/langflow_database_backup/database/$PGDATABASE" || echo "could not push metrics" >&2
  fi
}
if [ ! -f "$BACKUP_DIR/ok" ]; then
  report failure 0 "pg_dump failed: $(head -c 500 "$BACKUP_DIR/error" 2>/dev/null)"
  echo "backup FAILED: pg_dump did not produce a dump" >&2
  exit 1
fi
name=$(cat "$BACKUP_DIR/name")
size=$(wc -c < "$BACKUP_DIR/$name" | tr -d ' ')
if ! s3 s3 cp --only-show-errors "$BACKUP_DIR/$name" "$dest/$name"; then
  report failure "$size" "upload to $dest/$name failed"
  echo "backup FAILED: upload to $dest/$name" >&2
  exit 1
fi
echo "uploaded $dest/$name ($size bytes)"
# retention: dumps are named <db>-<YYYYmmddTHHMMSSZ>.dump; anything older than the cutoff goes, except the newest
cutoff=$(date -u -d "@$(( $(now) - RETENTION_DAYS * 86400 ))" +%Y%m%dT%H%M%SZ)
keys=$(s3 s3api list-objects-v2 --bucket "$S3_BUCKET" --prefix "$S3_PREFIX/" --query 'Contents[].Key' --output text | tr '\t' '\n' | grep '\.dump$' | sort)
newest=$(printf '%s\n' "$keys" | sed 's/.*-\([0-9]\{8\}T[0-9]\{6\}Z\)\.dump$/\1 &/' | sort | tail -n1 | cut -d' ' -f2)
pruned=0
for key in $keys; do
  stamp=$(printf '%s' "$key" | sed -n 's/.*-\([0-9]\{8\}T[0-9]\{6\}Z\)\.dump$/\1/p')
  [ -n "$stamp" ] || continue
  [ "$key" = "$newest" ] && continue
  if [ "$stamp" \< "$cutoff" ]; then
    s3 s3 rm --only-show-errors "s3://$S3_BUCKET/$key" && pruned=$((pruned + 1)) && echo "pruned $key (older than $RETENTION_DAYS days)"
  fi
done
report success "$size" "uploaded $name, pruned $pruned"
echo "backup OK: $name, $size bytes, $pruned old dumps pruned"
