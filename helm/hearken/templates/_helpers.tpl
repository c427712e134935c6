{{/* Chart name. */}}
{{- define "hearken.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name. */}}
{{- define "hearken.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Chart label. */}}
{{- define "hearken.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Common labels. */}}
{{- define "hearken.labels" -}}
helm.sh/chart: {{ include "hearken.chart" . }}
{{ include "hearken.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels. */}}
{{- define "hearken.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hearken.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Service account name. */}}
{{- define "hearken.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "hearken.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Image reference. */}}
{{- define "hearken.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Selector labels of the pipeline's pods: their own name, so that the gRPC service's
Deployment, Services and policies (which select by name and instance) never take them in. */}}
{{- define "hearken.pipelineSelectorLabels" -}}
app.kubernetes.io/name: {{ include "hearken.name" . }}-pipeline
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of the pipeline's objects. */}}
{{- define "hearken.pipelineLabels" -}}
helm.sh/chart: {{ include "hearken.chart" . }}
{{ include "hearken.pipelineSelectorLabels" . }}
app.kubernetes.io/component: pipeline
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
