{{/*
Labels. Standard Kubernetes recommended labels plus helm.sh/chart; selector labels are the stable subset
(never add a label to the selector of an existing workload: selectors are immutable).
*/}}

{{/* Selector labels. Optional: pass (dict "context" $ "component" "sentinel") for a sub-component. */}}
{{- define "langflow-common.selectorLabels" -}}
{{- $ctx := .context | default . -}}
app.kubernetes.io/name: {{ include "langflow-common.name" $ctx }}
app.kubernetes.io/instance: {{ $ctx.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{/* All labels of an object: selector labels + version, chart, managed-by, part-of and commonLabels. */}}
{{- define "langflow-common.labels" -}}
{{- $ctx := .context | default . -}}
{{ include "langflow-common.selectorLabels" . }}
{{- with $ctx.Chart.AppVersion }}
app.kubernetes.io/version: {{ . | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ $ctx.Release.Service }}
app.kubernetes.io/part-of: langflow-platform
helm.sh/chart: {{ include "langflow-common.chart" $ctx }}
{{- with $ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* metadata: name, namespace, labels and (optional) annotations of an object; `scanners` lists the scanner
decisions (_scanners.tpl) that concern it, rendered as annotations with their reasons.
Usage: include "langflow-common.metadata" (dict "context" $ "name" "x" "component" "y" "annotations" dict "scanners" (list "pullPolicy")) */}}
{{- define "langflow-common.metadata" -}}
name: {{ .name | default (include "langflow-common.fullname" .context) }}
namespace: {{ include "langflow-common.namespace" .context }}
labels:
  {{- include "langflow-common.labels" . | nindent 2 }}
{{- $own := .annotations | default dict }}
{{- if .scanners }}
{{- $own = include "langflow-common.scannerAnnotations" (dict "decisions" .scanners "annotations" $own) | fromYaml }}
{{- end }}
{{- $ann := merge (dict) $own (.context.Values.commonAnnotations | default dict) }}
{{- with $ann }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
