{{/*
Probes. A probe value is {enabled, path, port, scheme, initialDelaySeconds, periodSeconds, timeoutSeconds,
failureThreshold, successThreshold} (httpGet), or {enabled, tcp: true, port, ...} (tcpSocket), or
{enabled, exec: [cmd...], ...}; disabled probes render nothing.
Usage: include "langflow-common.probe" (dict "name" "readinessProbe" "probe" .Values.probes.readiness)
*/}}
{{- define "langflow-common.probe" -}}
{{- $p := .probe -}}
{{- if and $p (ne (toString $p.enabled) "false") }}
{{ .name }}:
  {{- if $p.exec }}
  exec:
    command: {{ toJson $p.exec }}
  {{- else if $p.tcp }}
  tcpSocket:
    port: {{ $p.port }}
  {{- else }}
  httpGet:
    path: {{ $p.path | default "/" }}
    port: {{ $p.port }}
    scheme: {{ $p.scheme | default "HTTP" }}
  {{- end }}
  initialDelaySeconds: {{ $p.initialDelaySeconds | default 0 }}
  periodSeconds: {{ $p.periodSeconds | default 10 }}
  timeoutSeconds: {{ $p.timeoutSeconds | default 1 }}
  failureThreshold: {{ $p.failureThreshold | default 3 }}
  successThreshold: {{ $p.successThreshold | default 1 }}
{{- end }}
{{- end -}}
