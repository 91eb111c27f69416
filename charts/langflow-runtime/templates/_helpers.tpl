{{/* Secret with secret-key and superuser-password, shared with the IDE (the same database). */}}
{{- define "langflow-runtime.secretName" -}}
{{- .Values.auth.existingSecret | default (printf "%s-secrets" (include "langflow-common.componentFullname" (dict "context" . "component" "ide"))) -}}
{{- end -}}

{{/* Secret with the api-key the worker sends to the pod's Langflow. */}}
{{- define "langflow-runtime.apiKeySecretName" -}}
{{- .Values.auth.apiKeyExistingSecret | default (include "langflow-common.suffixed" (dict "context" . "suffix" "api-key")) -}}
{{- end -}}

{{/* The broker's address as the KEDA operator (another namespace) reaches it: host.namespace.svc unless external. */}}
{{- define "langflow-runtime.brokerAddress" -}}
{{- $b := include "langflow-common.connections.broker" . | fromYaml -}}
{{- $host := include "langflow-common.connections.brokerHost" . -}}
{{- if not $b.host -}}{{- $host = printf "%s.%s.svc" $host (include "langflow-common.namespace" .) -}}{{- end -}}
{{- $host -}}
{{- end -}}
