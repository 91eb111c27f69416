{{/*
Scheduling. Pod anti-affinity across nodes (soft or hard) and topology spread across zones, built from
{podAntiAffinity: soft|hard|"", topologySpread: {enabled, maxSkew, topologyKey, whenUnsatisfiable}}
unless the chart's values give an explicit affinity.
Usage: include "langflow-common.affinity" (dict "context" $ "component" "ide")
*/}}
{{- define "langflow-common.affinity" -}}
{{- $v := .context.Values -}}
{{- if $v.affinity -}}
{{ toYaml $v.affinity }}
{{- else if eq ($v.podAntiAffinity | default "") "hard" -}}
podAntiAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    - topologyKey: kubernetes.io/hostname
      labelSelector:
        matchLabels:
          {{- include "langflow-common.selectorLabels" . | nindent 10 }}
{{- else if eq ($v.podAntiAffinity | default "") "soft" -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "langflow-common.selectorLabels" . | nindent 12 }}
{{- end -}}
{{- end -}}

{{- define "langflow-common.topologySpreadConstraints" -}}
{{- $t := .context.Values.topologySpread | default dict -}}
{{- if $t.enabled -}}
- maxSkew: {{ $t.maxSkew | default 1 }}
  topologyKey: {{ $t.topologyKey | default "topology.kubernetes.io/zone" }}
  whenUnsatisfiable: {{ $t.whenUnsatisfiable | default "ScheduleAnyway" }}
  labelSelector:
    matchLabels:
      {{- include "langflow-common.selectorLabels" . | nindent 6 }}
{{- end -}}
{{- end -}}

{{/* The scheduling block of a pod spec: affinity, topologySpreadConstraints, nodeSelector, tolerations, priorityClassName. */}}
{{- define "langflow-common.podScheduling" -}}
{{- $v := .context.Values -}}
{{- with (include "langflow-common.affinity" .) }}
affinity:
  {{- . | nindent 2 }}
{{- end }}
{{- with (include "langflow-common.topologySpreadConstraints" .) }}
topologySpreadConstraints:
  {{- . | nindent 2 }}
{{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}
