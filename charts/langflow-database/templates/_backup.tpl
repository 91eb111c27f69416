{{/* Environment of a backup/restore container: libpq's (a step on the postgres image) or aws-cli's (S3), and the
steps' settings. No secret is in it: credentials are files of the mounted Secrets, which files/backup/credentials.sh
turns into libpq's PGPASSFILE and aws-cli's AWS_SHARED_CREDENTIALS_FILE (both in the pod's /tmp emptyDir).
Usage: include "langflow-database.backupEnv" (dict "context" $ "libpq" true|false) */}}
{{- define "langflow-database.backupEnv" -}}
{{- $ctx := .context -}}
{{- $b := $ctx.Values.backup -}}
- name: BACKUP_DIR
  value: /backup
- name: HOME
  value: /tmp
- name: PGDATABASE
  value: {{ include "langflow-database.dbName" $ctx | quote }}
{{- if .libpq }}
- name: PGHOST
  value: {{ include "langflow-database.backupHost" $ctx | quote }}
- name: PGPORT
  value: {{ include "langflow-database.backupPort" $ctx | quote }}
- name: DATABASE_CREDENTIALS_DIR
  value: /run/secrets/database
- name: PGPASSFILE
  value: /tmp/pgpass
- name: PGSSLMODE
  value: {{ (($ctx.Values.global).database).sslmode | default "prefer" | quote }}
{{- include "langflow-common.databaseTLS.env" (dict "context" $ctx "defaultSecret" (include "langflow-database.caSecret" $ctx)) }}
- name: PGCONNECT_TIMEOUT
  value: "30"
{{- else if $b.s3.credentialsSecret }}
- name: S3_CREDENTIALS_DIR
  value: /run/secrets/s3
- name: AWS_SHARED_CREDENTIALS_FILE
  value: /tmp/aws/credentials
{{- end }}
- name: S3_ENDPOINT
  value: {{ $b.s3.endpoint | quote }}
- name: S3_BUCKET
  value: {{ $b.s3.bucket | quote }}
- name: S3_PREFIX
  value: {{ $b.s3.prefix | quote }}
- name: AWS_DEFAULT_REGION
  value: {{ $b.s3.region | quote }}
- name: RETENTION_DAYS
  value: {{ $b.retentionDays | quote }}
- name: COMPRESS_LEVEL
  value: {{ $b.compressLevel | quote }}
- name: PUSHGATEWAY_URL
  value: {{ $b.pushgatewayURL | quote }}
- name: RESTORE_DUMP
  value: {{ $ctx.Values.restore.dump | quote }}
{{- if $ctx.Values.restore.enabled }}
- name: RESTORE_ID
  value: {{ $ctx.Values.restore.id | quote }}
- name: RESTORE_FORCE
  value: {{ $ctx.Values.restore.force | toString | quote }}
{{- /* a first install restores into the database this release has just created (Langflow's own start rows only) */}}
- name: RESTORE_INTO_NEW_RELEASE
  value: {{ $ctx.Release.IsInstall | toString | quote }}
{{- end }}
{{- end -}}

{{/* Pod spec shared by the backup CronJob and the restore Job: init step + main step, scripts and /backup; the
extension points of the workload's own section ("values": backup or restore) after the chart's entries (extra env,
envFrom and volumeMounts in both steps; command, args and lifecycleHooks on the main step).
Usage: include "langflow-database.backupPod" (dict "context" $ "values" $section "first" (dict name image script) "second" (dict ...)) */}}
{{- define "langflow-database.backupPod" -}}
{{- $ctx := .context -}}
{{- $b := $ctx.Values.backup -}}
{{- $s := .values -}}
serviceAccountName: {{ include "langflow-common.serviceAccountName" $ctx }}
automountServiceAccountToken: false
enableServiceLinks: false
restartPolicy: Never
{{- with (include "langflow-common.imagePullSecrets" $ctx) }}
{{ . }}
{{- end }}
securityContext:
  {{- include "langflow-common.podSecurityContext" (dict "context" $ctx "Values" (dict "podSecurityContext" (dict "runAsUser" 999 "runAsGroup" 999 "fsGroup" 999))) | nindent 2 }}
{{- include "langflow-common.extensions.scheduling" (dict "context" $ctx "values" $s) }}
{{- include "langflow-common.extensions.pod" (dict "context" $ctx "values" $s) }}
terminationGracePeriodSeconds: {{ $s.terminationGracePeriodSeconds }}
initContainers:
  {{- include "langflow-database.backupContainer" (dict "context" $ctx "values" $s "step" .first) | nindent 2 }}
  {{- include "langflow-common.extensions.initContainers" (dict "context" $ctx "values" $s) | nindent 2 }}
containers:
  {{- include "langflow-database.backupContainer" (dict "context" $ctx "values" $s "step" .second "main" true) | nindent 2 }}
  {{- include "langflow-common.extensions.sidecars" (dict "context" $ctx "values" $s) | nindent 2 }}
volumes:
  - name: scripts
    configMap:
      name: {{ include "langflow-common.suffixed" (dict "context" $ctx "suffix" "backup-scripts") }}
      defaultMode: 0555
  - name: backup
    emptyDir:
      sizeLimit: {{ $ctx.Values.backup.scratchSizeLimit }}
  - name: tmp
    emptyDir: {sizeLimit: 256Mi}
  {{- /* group-readable (0440): the pod's fsGroup 999 owns the files, the steps run as uid 999 */}}
  - name: database-credentials
    secret:
      secretName: {{ include "langflow-database.secretName" $ctx }}
      items:
        - {key: username, path: username}
        - {key: password, path: password}
      defaultMode: 0440
  {{- with $b.s3.credentialsSecret }}
  - name: s3-credentials
    secret:
      secretName: {{ . }}
      items:
        - {key: ACCESS_KEY_ID, path: ACCESS_KEY_ID}
        - {key: ACCESS_SECRET_KEY, path: ACCESS_SECRET_KEY}
      defaultMode: 0440
  {{- end }}
  {{- include "langflow-common.databaseTLS.volume" (dict "context" $ctx "defaultSecret" (include "langflow-database.caSecret" $ctx)) | nindent 2 }}
  {{- include "langflow-common.extensions.volumes" (dict "context" $ctx "values" $s) | nindent 2 }}
{{- end -}}

{{- define "langflow-database.backupContainer" -}}
{{- $ctx := .context -}}
{{- $img := index $ctx.Values.backup .step.image -}}
- name: {{ .step.name }}
  image: {{ include "langflow-common.image" (dict "image" $img "global" $ctx.Values.global "name" (printf "database.backup.%s" .step.image)) }}
  imagePullPolicy: {{ $img.pullPolicy }}
  {{- if or (not .main) (not .values.command) }}
  command: ["sh", "/scripts/{{ .step.script }}"]
  {{- end }}
  {{- if .main }}
  {{- include "langflow-common.extensions.container" (dict "context" $ctx "values" .values) | nindent 2 }}
  {{- else }}
  {{- with .values.extraEnvVarsFrom }}
  envFrom: {{- include "langflow-common.extensions.render" (dict "value" . "context" $ctx) | nindent 4 }}
  {{- end }}
  {{- end }}
  {{- $libpq := eq .step.image "postgresImage" }}
  env:
    {{- include "langflow-database.backupEnv" (dict "context" $ctx "libpq" $libpq) | nindent 4 }}
    {{- include "langflow-common.extensions.env" (dict "context" $ctx "values" .values) | nindent 4 }}
  securityContext:
    {{- include "langflow-common.containerSecurityContext" (dict "context" $ctx "override" (dict "runAsUser" 999 "runAsGroup" 999)) | nindent 4 }}
  resources:
    {{- include "langflow-common.resources" (dict "resources" $ctx.Values.backup.resources "name" "database.backup.resources") | nindent 4 }}
  volumeMounts:
    - {name: scripts, mountPath: /scripts, readOnly: true}
    - {name: backup, mountPath: /backup}
    - {name: tmp, mountPath: /tmp}
    {{- if $libpq }}
    - {name: database-credentials, mountPath: /run/secrets/database, readOnly: true}
    {{- include "langflow-common.databaseTLS.volumeMount" (dict "context" $ctx "defaultSecret" (include "langflow-database.caSecret" $ctx)) | nindent 4 }}
    {{- else if $ctx.Values.backup.s3.credentialsSecret }}
    - {name: s3-credentials, mountPath: /run/secrets/s3, readOnly: true}
    {{- end }}
    {{- include "langflow-common.extensions.volumeMounts" (dict "context" $ctx "values" .values) | nindent 4 }}
{{- end -}}
