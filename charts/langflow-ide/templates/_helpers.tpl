{{/* Secret holding secret-key and superuser-password: auth.existingSecret or the generated one. */}}
{{- define "langflow-ide.secretName" -}}
{{- .Values.auth.existingSecret | default (include "langflow-common.suffixed" (dict "context" . "suffix" "secrets")) -}}
{{- end -}}

{{- define "langflow-ide.tlsSecretName" -}}
{{- .Values.ingress.tls.secretName | default (include "langflow-common.suffixed" (dict "context" . "suffix" "tls")) -}}
{{- end -}}

{{/* nginx annotations shared by both Ingress objects: TLS issuer, timeouts for WebSockets, body size. */}}
{{- define "langflow-ide.ingressAnnotations" -}}
{{- $i := .Values.ingress -}}
{{- if $i.tls.enabled }}
{{- if $i.tls.issuer }}
cert-manager.io/issuer: {{ $i.tls.issuer | quote }}
{{- else if $i.tls.clusterIssuer }}
cert-manager.io/cluster-issuer: {{ $i.tls.clusterIssuer | quote }}
{{- end }}
nginx.ingress.kubernetes.io/ssl-redirect: "true"
{{- end }}
nginx.ingress.kubernetes.io/proxy-read-timeout: {{ $i.websocketTimeoutSeconds | quote }}
nginx.ingress.kubernetes.io/proxy-send-timeout: {{ $i.websocketTimeoutSeconds | quote }}
nginx.ingress.kubernetes.io/proxy-body-size: {{ $i.bodySize | quote }}
{{- end -}}

{{/*
The startup probe: probes.startup, or with warmup.enabled an exec of files/warmup.py (health check, then each
warmup.paths path with a session, warmup.requests times) whose timeout is warmup.timeoutSeconds. As YAML.
Usage: include "langflow-ide.startupProbe" . | fromYaml
*/}}
{{- define "langflow-ide.startupProbe" -}}
{{- $probe := deepCopy .Values.probes.startup -}}
{{- if .Values.warmup.enabled -}}
{{- $cmd := list "python" (printf "%s/warmup.py" .Values.warmup.mountPath) "--requests" (toString .Values.warmup.requests) "--record" .Values.warmup.recordPath -}}
{{- $probe = merge (dict "exec" (concat $cmd .Values.warmup.paths) "timeoutSeconds" .Values.warmup.timeoutSeconds) $probe -}}
{{- end -}}
{{- toYaml $probe -}}
{{- end -}}
