{{- define "langflow-vectorstore.secretName" -}}
{{- ((.Values.global).vectorstore).existingSecret | default (include "langflow-common.suffixed" (dict "context" . "suffix" "credentials")) -}}
{{- end -}}
{{- define "langflow-vectorstore.headless" -}}
{{- include "langflow-common.suffixed" (dict "context" . "suffix" "headless") -}}
{{- end -}}
{{- define "langflow-vectorstore.storageClass" -}}
{{- .Values.persistence.storageClass | default ((.Values.global).storageClass) | default "" -}}
{{- end -}}
{{/* DNS name of pod N through the headless Service. */}}
{{- define "langflow-vectorstore.podHost" -}}
{{- printf "%s-%d.%s.%s.svc.%s" (include "langflow-common.fullname" .context) (int .ordinal) (include "langflow-vectorstore.headless" .context) (include "langflow-common.namespace" .context) .context.Values.clusterDomain -}}
{{- end -}}
{{- define "langflow-vectorstore.validate" -}}
{{- $type := ((.Values.global).vectorstore).type | default "qdrant" -}}
{{- if and (ne .Values.mode "external") (ne .Values.mode $type) -}}
{{- fail (printf "vectorstore.mode is %s but global.vectorstore.type is %q: set global.vectorstore.type: %s so the apps use the right client" .Values.mode $type .Values.mode) -}}
{{- end -}}
{{- if and (eq .Values.mode "external") (not (or ((.Values.global).vectorstore).url .Values.external.host)) -}}
{{- fail "vectorstore.mode external needs global.vectorstore.url (or vectorstore.external.host)" -}}
{{- end -}}
{{- if and (eq .Values.mode "milvus") (not .Values.milvus.etcd.embedded) (not .Values.milvus.etcd.endpoints) -}}
{{- fail "vectorstore.milvus.etcd.endpoints is required when vectorstore.milvus.etcd.embedded is false" -}}
{{- end -}}
{{- if and (eq .Values.mode "milvus") (eq .Values.milvus.objectStore.type "s3") (not .Values.milvus.objectStore.address) -}}
{{- fail "vectorstore.milvus.objectStore.address is required when vectorstore.milvus.objectStore.type is s3" -}}
{{- end -}}
{{- if and .Values.persistence.existingClaim (ne .Values.mode "milvus") (gt (int .Values.replicas) 1) -}}
{{- fail (printf "vectorstore.persistence.existingClaim mounts one PVC: it needs vectorstore.replicas 1 (got %d; each node needs its own volume)" (int .Values.replicas)) -}}
{{- end -}}
{{- if and (eq .Values.mode "qdrant") (gt (int .Values.qdrant.replicationFactor) (int .Values.replicas)) -}}
{{- fail (printf "vectorstore.qdrant.replicationFactor (%d) must not exceed vectorstore.replicas (%d)" (int .Values.qdrant.replicationFactor) (int .Values.replicas)) -}}
{{- end -}}
{{- end -}}
{{/* Weaviate raft members: every pod's node name (the pod name). */}}
{{- define "langflow-vectorstore.raftJoin" -}}
{{- $names := list -}}
{{- range $i := until (int .Values.replicas) -}}
{{- $names = append $names (printf "%s-%d" (include "langflow-common.fullname" $) $i) -}}
{{- end -}}
{{- join "," $names -}}
{{- end -}}
