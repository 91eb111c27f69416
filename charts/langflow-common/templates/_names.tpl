{{/*
Names. Every object of a component is named "<release>-<component>" (63 characters at most), where the
component is the chart name without its "langflow-" prefix ("ide", "runtime", "broker", ...). The same rule
lets one chart name another component's objects (see "langflow-common.componentFullname").
*/}}

{{/* The component name: nameOverride, or the chart name without "langflow-". */}}
{{- define "langflow-common.name" -}}
{{- default (trimPrefix "langflow-" .Chart.Name) .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The fully qualified name of this chart's objects: fullnameOverride, or "<release>-<component>". */}}
{{- define "langflow-common.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "langflow-common.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/*
The fully qualified name of another component of the same release.
Usage: include "langflow-common.componentFullname" (dict "context" $ "component" "database")
*/}}
{{- define "langflow-common.componentFullname" -}}
{{- printf "%s-%s" .context.Release.Name .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* "<chart>-<version>" for the helm.sh/chart label. */}}
{{- define "langflow-common.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The namespace objects go to: namespaceOverride, or the release namespace. */}}
{{- define "langflow-common.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* A suffixed name: include "langflow-common.suffixed" (dict "context" $ "suffix" "metrics") */}}
{{- define "langflow-common.suffixed" -}}
{{- printf "%s-%s" (include "langflow-common.fullname" .context) .suffix | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The ServiceAccount name: serviceAccount.name, or the fullname when created, or "default". */}}
{{- define "langflow-common.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "langflow-common.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}
