{{/*
Extension points of a workload (Bitnami's names): what a platform engineer adds to the chart's pods without
forking it. Every value is a list or object of the real Kubernetes type (the charts' schemas take the
definitions from the API server's OpenAPI) and is rendered through `tpl`, so it may refer to the release
("{{ .Release.Name }}-..."). Keys read from the component's values, or from the map given as "values" (a
workload's own section, e.g. the database chart's `standalone`):
  extraEnvVars (EnvVar[]), extraEnvVarsFrom (EnvFromSource[]), extraVolumeMounts (VolumeMount[]), command, args,
  lifecycleHooks (Lifecycle) on the main container; extraVolumes (Volume[]), initContainers (Container[], after
  the chart's own), sidecars (Container[]), hostAliases (HostAlias[]) on the pod.
*/}}

{{/* A value rendered through tpl, or nothing when it is empty.
Usage: include "langflow-common.extensions.render" (dict "value" .Values.extraVolumes "context" $) */}}
{{- define "langflow-common.extensions.render" -}}
{{- if .value -}}
{{- tpl (toYaml .value) .context -}}
{{- end -}}
{{- end -}}

{{/* Extra env entries of the main container (append inside its env list).
Usage: include "langflow-common.extensions.env" (dict "context" $) | nindent 12 */}}
{{- define "langflow-common.extensions.env" -}}
{{- include "langflow-common.extensions.render" (dict "value" (.values | default .context.Values).extraEnvVars "context" .context) -}}
{{- end -}}

{{/* The main container's command, args, envFrom and lifecycle (the chart's own `lifecycle` under the user's:
a user's hook of the same name replaces the chart's).
Usage: include "langflow-common.extensions.container" (dict "context" $ "lifecycle" (dict ...)) | nindent 10 */}}
{{- define "langflow-common.extensions.container" -}}
{{- $v := .values | default .context.Values -}}
{{- with $v.command }}
command: {{- include "langflow-common.extensions.render" (dict "value" . "context" $.context) | nindent 2 }}
{{- end }}
{{- with $v.args }}
args: {{- include "langflow-common.extensions.render" (dict "value" . "context" $.context) | nindent 2 }}
{{- end }}
{{- with $v.extraEnvVarsFrom }}
envFrom: {{- include "langflow-common.extensions.render" (dict "value" . "context" $.context) | nindent 2 }}
{{- end }}
{{- $lifecycle := merge (dict) (fromYaml (include "langflow-common.extensions.render" (dict "value" $v.lifecycleHooks "context" .context))) (.lifecycle | default dict) }}
{{- with $lifecycle }}
lifecycle: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Extra volumeMounts of the main container (append inside its volumeMounts list).
Usage: include "langflow-common.extensions.volumeMounts" (dict "context" $) | nindent 12 */}}
{{- define "langflow-common.extensions.volumeMounts" -}}
{{- include "langflow-common.extensions.render" (dict "value" (.values | default .context.Values).extraVolumeMounts "context" .context) -}}
{{- end -}}

{{/* Extra volumes of the pod (append inside its volumes list).
Usage: include "langflow-common.extensions.volumes" (dict "context" $) | nindent 8 */}}
{{- define "langflow-common.extensions.volumes" -}}
{{- include "langflow-common.extensions.render" (dict "value" (.values | default .context.Values).extraVolumes "context" .context) -}}
{{- end -}}

{{/* The user's init containers (append inside initContainers) and sidecars (append inside containers).
Usage: include "langflow-common.extensions.initContainers" (dict "context" $) | nindent 8 */}}
{{- define "langflow-common.extensions.initContainers" -}}
{{- include "langflow-common.extensions.render" (dict "value" (.values | default .context.Values).initContainers "context" .context) -}}
{{- end -}}
{{- define "langflow-common.extensions.sidecars" -}}
{{- include "langflow-common.extensions.render" (dict "value" (.values | default .context.Values).sidecars "context" .context) -}}
{{- end -}}

{{/* hostAliases of the pod. Usage: include "langflow-common.extensions.pod" (dict "context" $) | nindent 6 */}}
{{- define "langflow-common.extensions.pod" -}}
{{- with (.values | default .context.Values).hostAliases }}
hostAliases: {{- include "langflow-common.extensions.render" (dict "value" . "context" $.context) | nindent 2 }}
{{- end }}
{{- end -}}

{{/* podLabels / podAnnotations of a workload's pod template (append inside its labels / annotations maps).
Usage: include "langflow-common.extensions.podLabels" (dict "context" $ "values" $section) | nindent 8 */}}
{{- define "langflow-common.extensions.podLabels" -}}
{{- with (.values | default .context.Values).podLabels }}{{ toYaml . }}{{ end -}}
{{- end -}}
{{- define "langflow-common.extensions.podAnnotations" -}}
{{- with (.values | default .context.Values).podAnnotations }}{{ toYaml . }}{{ end -}}
{{- end -}}

{{/* nodeSelector, tolerations, affinity and priorityClassName of a workload whose section has its own (the
monitoring chart's bundled components, the database chart's backup and restore Jobs).
Usage: include "langflow-common.extensions.scheduling" (dict "context" $ "values" $section) | nindent 6 */}}
{{- define "langflow-common.extensions.scheduling" -}}
{{- $v := .values | default .context.Values -}}
{{- with $v.nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations: {{- include "langflow-common.extensions.render" (dict "value" . "context" $.context) | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity: {{- include "langflow-common.extensions.render" (dict "value" . "context" $.context) | nindent 2 }}
{{- end }}
{{- with $v.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}
