{{/*
The chart name, or nameOverride.
*/}}
{{- define "landlord.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of every object: fullnameOverride, else the release name when it already
contains the chart name (release "landlord" gives "landlord"), else "<release>-<chart>".
*/}}
{{- define "landlord.fullname" -}}
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

{{/*
"<chart>-<version>" for the helm.sh/chart label.
*/}}
{{- define "landlord.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels that select the operator pod. Never change them: a Deployment's selector is immutable.
*/}}
{{- define "landlord.selectorLabels" -}}
app.kubernetes.io/name: {{ include "landlord.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Standard labels of every object the chart renders.
*/}}
{{- define "landlord.labels" -}}
helm.sh/chart: {{ include "landlord.chart" . }}
{{ include "landlord.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: landlord
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The operator's ServiceAccount name.
*/}}
{{- define "landlord.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "landlord.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The container image: repository:tag, the tag defaulting to the chart's appVersion.
*/}}
{{- define "landlord.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
PromQL label matchers that pick this release's operator series in the alerting rules:
prometheusRule.selector, else the job and namespace the chart's ServiceMonitor gives them.
*/}}
{{- define "landlord.metricsSelector" -}}
{{- if .Values.prometheusRule.selector }}
{{- .Values.prometheusRule.selector }}
{{- else }}
{{- printf "job=%q,namespace=%q" (include "landlord.fullname" .) .Release.Namespace }}
{{- end }}
{{- end }}

{{/*
The directory of a file:// archive.url ("" for any other store), without a trailing slash.
*/}}
{{- define "landlord.archiveDir" -}}
{{- if hasPrefix "file://" .Values.archive.url }}
{{- trimPrefix "file://" .Values.archive.url | trimSuffix "/" }}
{{- end }}
{{- end }}

{{/*
The claim mounted at the archive directory: archive.persistence.existingClaim, else the one
the chart creates.
*/}}
{{- define "landlord.archiveClaim" -}}
{{- .Values.archive.persistence.existingClaim | default (printf "%s-archives" (include "landlord.fullname" .) | trunc 63 | trimSuffix "-") }}
{{- end }}
