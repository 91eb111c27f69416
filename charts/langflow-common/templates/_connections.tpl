{{/*
Connections: the ONE place that turns global.database / global.broker / global.vectorstore into container env.
Passwords come from Secrets by secretKeyRef; URLs are assembled by Kubernetes' $(VAR) expansion, so no secret
ever lands in a rendered manifest. Variables are emitted in dependency order ($(VAR) only expands variables
declared earlier in the list).

Names (see CONTRIBUTING.md, "Connection contract"): the database Service is "<release>-database" unless
global.database.host is set; its Secret is global.database.existingSecret or "<release>-database-credentials"
(keys username, password). The broker Service is "<release>-broker"; its Secret global.broker.existingSecret or
"<release>-broker-credentials" (keys username, password, amqp-url, management-url, redis-url). The vector store
Service is "<release>-vectorstore" unless global.vectorstore.url is set; its Secret
global.vectorstore.existingSecret or "<release>-vectorstore-credentials" (key api-key, optional).

Env produced:
  database:    LF_DATABASE_USER, LF_DATABASE_PASSWORD, LF_DATABASE_HOST, LF_DATABASE_PORT, LF_DATABASE_NAME,
               PGPASSWORD (the same Secret key), LANGFLOW_DATABASE_URL=postgresql+psycopg://user@host:port/name?sslmode=...
               (no password in the URL: libpq takes it from PGPASSWORD, whatever characters it holds),
               PGSSLROOTCERT when the server is verified (the CA's Secret file: see _tls.tpl; the container mounts
               "langflow-common.databaseTLS.volumeMount" and its pod "langflow-common.databaseTLS.volume")
  broker:      LF_BROKER_TYPE, LF_BROKER_QUEUE, LF_BROKER_DEAD_LETTER_QUEUE, and by type
               rabbitmq: LF_BROKER_USERNAME, LF_BROKER_PASSWORD, LF_BROKER_URL=amqp://$(U):$(P)@host:5672/vhost
               redis:    LF_BROKER_PASSWORD, LF_BROKER_URL=redis://:$(P)@host:6379/0
               sqs:      LF_BROKER_URL=<queueURL>, AWS_REGION, AWS_DEFAULT_REGION, LF_BROKER_SQS_ENDPOINT
  vectorstore: LF_VECTORSTORE_TYPE, LF_VECTORSTORE_URL, LF_VECTORSTORE_API_KEY (optional secretKeyRef)
The database URL names the psycopg (v3) driver: Langflow 1.13 also opens SYNC engines (migration lock, version
check) from the same URL, and a bare postgresql:// makes SQLAlchemy import psycopg2, which Langflow does not ship.
Generated passwords are alphanumeric (URL-safe); a database password from an existingSecret may hold any
character (it never enters a URL). Broker URLs still carry theirs: a broker existingSecret's password must be
URL-safe.

Usage (in a container's env list):
  env:
    {{- include "langflow-common.connections.databaseEnv" $ | nindent 4 }}
    {{- include "langflow-common.connections.brokerEnv" $ | nindent 4 }}
    {{- include "langflow-common.connections.vectorstoreEnv" $ | nindent 4 }}
*/}}

{{/* The global.database block with its defaults. */}}
{{- define "langflow-common.connections.database" -}}
{{- $d := merge (deepCopy ((.Values.global).database | default dict)) (dict "host" "" "port" 5432 "name" "langflow" "user" "langflow" "existingSecret" "" "sslmode" "prefer" "tls" (dict "caSecret" "" "caKey" "ca.crt")) -}}
{{- toYaml $d -}}
{{- end -}}

{{/* The global.broker block with its defaults. */}}
{{- define "langflow-common.connections.broker" -}}
{{- $sqs := dict "queueURL" "" "region" "" "endpoint" "" -}}
{{- $b := merge (deepCopy ((.Values.global).broker | default dict)) (dict "type" "rabbitmq" "host" "" "port" 0 "vhost" "/" "queue" "langflow.flow-runs" "deadLetterQueue" "langflow.flow-runs.dlq" "existingSecret" "" "sqs" $sqs) -}}
{{- toYaml $b -}}
{{- end -}}

{{/* The global.vectorstore block with its defaults. */}}
{{- define "langflow-common.connections.vectorstore" -}}
{{- $v := merge (deepCopy ((.Values.global).vectorstore | default dict)) (dict "type" "qdrant" "url" "" "existingSecret" "") -}}
{{- toYaml $v -}}
{{- end -}}

{{/* Name of the database credentials Secret. */}}
{{- define "langflow-common.connections.databaseSecret" -}}
{{- $d := include "langflow-common.connections.database" . | fromYaml -}}
{{- $d.existingSecret | default (printf "%s-credentials" (include "langflow-common.componentFullname" (dict "context" . "component" "database"))) -}}
{{- end -}}

{{/* Name of the broker credentials Secret. */}}
{{- define "langflow-common.connections.brokerSecret" -}}
{{- $b := include "langflow-common.connections.broker" . | fromYaml -}}
{{- $b.existingSecret | default (printf "%s-credentials" (include "langflow-common.componentFullname" (dict "context" . "component" "broker"))) -}}
{{- end -}}

{{/* Name of the vector store credentials Secret. */}}
{{- define "langflow-common.connections.vectorstoreSecret" -}}
{{- $v := include "langflow-common.connections.vectorstore" . | fromYaml -}}
{{- $v.existingSecret | default (printf "%s-credentials" (include "langflow-common.componentFullname" (dict "context" . "component" "vectorstore"))) -}}
{{- end -}}

{{/* Broker host: global.broker.host or the "<release>-broker" Service. */}}
{{- define "langflow-common.connections.brokerHost" -}}
{{- $b := include "langflow-common.connections.broker" . | fromYaml -}}
{{- $b.host | default (include "langflow-common.componentFullname" (dict "context" . "component" "broker")) -}}
{{- end -}}

{{/* Broker port: global.broker.port, or 5672 (rabbitmq) / 6379 (redis). */}}
{{- define "langflow-common.connections.brokerPort" -}}
{{- $b := include "langflow-common.connections.broker" . | fromYaml -}}
{{- if and $b.port (gt (int $b.port) 0) -}}{{- int $b.port -}}
{{- else if eq $b.type "redis" -}}6379
{{- else -}}5672
{{- end -}}
{{- end -}}

{{- define "langflow-common.connections.databaseEnv" -}}
{{- $d := include "langflow-common.connections.database" . | fromYaml -}}
{{- $host := $d.host | default (include "langflow-common.componentFullname" (dict "context" . "component" "database")) -}}
- name: LF_DATABASE_USER
  value: {{ $d.user | quote }}
- name: LF_DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "langflow-common.connections.databaseSecret" . }}
      key: password
- name: LF_DATABASE_HOST
  value: {{ $host | quote }}
- name: LF_DATABASE_PORT
  value: {{ int $d.port | quote }}
- name: LF_DATABASE_NAME
  value: {{ $d.name | quote }}
# libpq (under psycopg, pg_dump, psql) reads the password from PGPASSWORD when the URL carries none, so any
# character a password holds ("@", "/", ":", "%", as RDS-managed secrets do) reaches the server unchanged
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "langflow-common.connections.databaseSecret" . }}
      key: password
{{- include "langflow-common.databaseTLS.env" (dict "context" .) }}
- name: LANGFLOW_DATABASE_URL
  value: {{ printf "postgresql+psycopg://%s@%s:%d/%s%s" (urlquery $d.user) $host (int $d.port) $d.name (ternary (printf "?sslmode=%s" $d.sslmode) "" (not (empty $d.sslmode))) | quote }}
{{- end -}}

{{- define "langflow-common.connections.brokerEnv" -}}
{{- $b := include "langflow-common.connections.broker" . | fromYaml -}}
{{- $host := include "langflow-common.connections.brokerHost" . -}}
{{- $port := include "langflow-common.connections.brokerPort" . -}}
{{- $secret := include "langflow-common.connections.brokerSecret" . -}}
- name: LF_BROKER_TYPE
  value: {{ $b.type | quote }}
- name: LF_BROKER_QUEUE
  value: {{ $b.queue | quote }}
- name: LF_BROKER_DEAD_LETTER_QUEUE
  value: {{ $b.deadLetterQueue | quote }}
{{- if eq $b.type "rabbitmq" }}
- name: LF_BROKER_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: username
- name: LF_BROKER_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: password
- name: LF_BROKER_URL
  value: {{ printf "amqp://$(LF_BROKER_USERNAME):$(LF_BROKER_PASSWORD)@%s:%s/%s" $host $port (urlquery ($b.vhost | default "/")) | quote }}
{{- else if eq $b.type "redis" }}
- name: LF_BROKER_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: password
- name: LF_BROKER_URL
  value: {{ printf "redis://:$(LF_BROKER_PASSWORD)@%s:%s/0" $host $port | quote }}
{{- else if eq $b.type "sqs" }}
{{- if not $b.sqs.queueURL }}{{ fail "global.broker.sqs.queueURL is required when global.broker.type is sqs" }}{{ end }}
- name: LF_BROKER_URL
  value: {{ $b.sqs.queueURL | quote }}
{{- with $b.sqs.region }}
- name: AWS_REGION
  value: {{ . | quote }}
- name: AWS_DEFAULT_REGION
  value: {{ . | quote }}
{{- end }}
{{- with $b.sqs.endpoint }}
- name: LF_BROKER_SQS_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- else }}
{{- fail (printf "global.broker.type must be rabbitmq, redis or sqs (got %q)" $b.type) }}
{{- end }}
{{- end -}}

{{/* The vector store URL: global.vectorstore.url, or the in-release Service on the type's HTTP/gRPC port. */}}
{{- define "langflow-common.connections.vectorstoreURL" -}}
{{- $v := include "langflow-common.connections.vectorstore" . | fromYaml -}}
{{- if $v.url -}}{{- $v.url -}}
{{- else -}}
{{- $host := include "langflow-common.componentFullname" (dict "context" . "component" "vectorstore") -}}
{{- $ports := dict "qdrant" "http://%s:6333" "weaviate" "http://%s:8080" "milvus" "http://%s:19530" -}}
{{- if not (hasKey $ports $v.type) -}}{{- fail (printf "global.vectorstore.type must be qdrant, weaviate or milvus (got %q)" $v.type) -}}{{- end -}}
{{- printf (index $ports $v.type) $host -}}
{{- end -}}
{{- end -}}

{{- define "langflow-common.connections.vectorstoreEnv" -}}
{{- $v := include "langflow-common.connections.vectorstore" . | fromYaml -}}
- name: LF_VECTORSTORE_TYPE
  value: {{ $v.type | quote }}
- name: LF_VECTORSTORE_URL
  value: {{ include "langflow-common.connections.vectorstoreURL" . | quote }}
- name: LF_VECTORSTORE_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "langflow-common.connections.vectorstoreSecret" . }}
      key: api-key
      optional: true
{{- end -}}
