{{/* Environment of the backup and restore containers (libpq, S3, retention). */}}
{{- define "langflow-database.backupEnv" -}}
{{- $b := .Values.backup -}}
{{- $secret := include "langflow-database.secretName" . -}}
- name: BACKUP_DIR
  value: /backup
- name: HOME
  value: /tmp
- name: PGHOST
  value: {{ include "langflow-database.backupHost" . | quote }}
- name: PGPORT
  value: {{ include "langflow-database.backupPort" . | quote }}
- name: PGDATABASE
  value: {{ include "langflow-database.dbName" . | quote }}
- name: PGUSER
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: username}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: password}
- name: PGSSLMODE
  value: {{ ((.Values.global).database).sslmode | default "prefer" | quote }}
{{- include "langflow-common.databaseTLS.env" (dict "context" . "defaultSecret" (include "langflow-database.caSecret" .)) }}
- name: PGCONNECT_TIMEOUT
  value: "30"
- name: S3_ENDPOINT
  value: {{ $b.s3.endpoint | quote }}
- name: S3_BUCKET
  value: {{ $b.s3.bucket | quote }}
- name: S3_PREFIX
  value: {{ $b.s3.prefix | quote }}
- name: AWS_DEFAULT_REGION
  value: {{ $b.s3.region | quote }}
{{- with $b.s3.credentialsSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef: {name: {{ . }}, key: ACCESS_KEY_ID}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef: {name: {{ . }}, key: ACCESS_SECRET_KEY}
{{- end }}
- name: RETENTION_DAYS
  value: {{ $b.retentionDays | quote }}
- name: COMPRESS_LEVEL
  value: {{ $b.compressLevel | quote }}
- name: PUSHGATEWAY_URL
  value: {{ $b.pushgatewayURL | quote }}
- name: RESTORE_DUMP
  value: {{ .Values.restore.dump | quote }}
{{- if .Values.restore.enabled }}
- name: RESTORE_ID
  value: {{ .Values.restore.id | quote }}
- name: RESTORE_FORCE
  value: {{ .Values.restore.force | toString | quote }}
{{- /* a first install restores into the database this release has just created (Langflow's own start rows only) */}}
- name: RESTORE_INTO_NEW_RELEASE
  value: {{ .Release.IsInstall | toString | quote }}
{{- end }}
{{- end -}}

{{/* Pod spec shared by the backup CronJob and the restore Job: init step + main step, scripts and /backup.
Usage: include "langflow-database.backupPod" (dict "context" $ "first" (dict name image script) "second" (dict ...)) */}}
{{- define "langflow-database.backupPod" -}}
{{- $ctx := .context -}}
{{- $b := $ctx.Values.backup -}}
serviceAccountName: {{ include "langflow-common.serviceAccountName" $ctx }}
automountServiceAccountToken: false
enableServiceLinks: false
restartPolicy: Never
{{- with (include "langflow-common.imagePullSecrets" $ctx) }}
{{ . }}
{{- end }}
securityContext:
  {{- include "langflow-common.podSecurityContext" (dict "Values" (dict "podSecurityContext" (dict "runAsUser" 999 "runAsGroup" 999 "fsGroup" 999))) | nindent 2 }}
initContainers:
  {{- include "langflow-database.backupContainer" (dict "context" $ctx "step" .first) | nindent 2 }}
containers:
  {{- include "langflow-database.backupContainer" (dict "context" $ctx "step" .second) | nindent 2 }}
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
  {{- include "langflow-common.databaseTLS.volume" (dict "context" $ctx "defaultSecret" (include "langflow-database.caSecret" $ctx)) | nindent 2 }}
{{- end -}}

{{- define "langflow-database.backupContainer" -}}
{{- $ctx := .context -}}
{{- $img := index $ctx.Values.backup .step.image -}}
- name: {{ .step.name }}
  image: {{ include "langflow-common.image" (dict "image" $img "global" $ctx.Values.global "name" (printf "database.backup.%s" .step.image)) }}
  imagePullPolicy: {{ $img.pullPolicy }}
  command: ["sh", "/scripts/{{ .step.script }}"]
  env:
    {{- include "langflow-database.backupEnv" $ctx | nindent 4 }}
  securityContext:
    {{- include "langflow-common.containerSecurityContext" (dict "context" $ctx "override" (dict "runAsUser" 999 "runAsGroup" 999)) | nindent 4 }}
  resources:
    {{- include "langflow-common.resources" (dict "resources" $ctx.Values.backup.resources "name" "database.backup.resources") | nindent 4 }}
  volumeMounts:
    - {name: scripts, mountPath: /scripts, readOnly: true}
    - {name: backup, mountPath: /backup}
    - {name: tmp, mountPath: /tmp}
    {{- include "langflow-common.databaseTLS.volumeMount" (dict "context" $ctx "defaultSecret" (include "langflow-database.caSecret" $ctx)) | nindent 4 }}
{{- end -}}
