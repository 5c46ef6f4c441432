{{/*
Names and labels shared by every template of the stepup chart.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "stepup.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The resource name prefix: fullnameOverride, else "<release>-<chart>" (just the release name
when it already contains the chart name). Kept to 52 characters so that the "-operator" and
"-authz" suffixes still fit in a DNS label.
*/}}
{{- define "stepup.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "stepup.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the pods of one component; call with (dict "ctx" $ "component" "operator"). */}}
{{- define "stepup.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stepup.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The standard labels of every object; call with (dict "ctx" $ "component" "operator"). */}}
{{- define "stepup.labels" -}}
helm.sh/chart: {{ include "stepup.chart" .ctx }}
{{ include "stepup.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: stepup
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The image reference; the tag defaults to the chart's appVersion. */}}
{{- define "stepup.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Operator object names. */}}
{{- define "stepup.operator.fullname" -}}
{{- printf "%s-operator" (include "stepup.fullname" .) }}
{{- end }}

{{- define "stepup.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "stepup.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* ext_authz object names. */}}
{{- define "stepup.authz.fullname" -}}
{{- printf "%s-authz" (include "stepup.fullname" .) }}
{{- end }}

{{- define "stepup.authz.serviceAccountName" -}}
{{- if .Values.authz.serviceAccount.create }}
{{- default (include "stepup.authz.fullname" .) .Values.authz.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.authz.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
ServiceAccount annotations: the IRSA role (eks.amazonaws.com/role-arn) and the extra ones;
call with the serviceAccount values.
*/}}
{{- define "stepup.serviceAccountAnnotations" -}}
{{- $a := dict }}
{{- with .annotations }}{{ $a = merge $a . }}{{ end }}
{{- with .roleArn }}{{ $_ := set $a "eks.amazonaws.com/role-arn" . }}{{ end }}
{{- with $a }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Pod annotations: Prometheus scraping of the admin port (when asked) and the extra ones; call
with (dict "values" .Values.operator "port" 9004).
*/}}
{{- define "stepup.podAnnotations" -}}
{{- $a := dict }}
{{- if .values.metrics.scrapeAnnotations }}
{{- $_ := set $a "prometheus.io/scrape" "true" }}
{{- $_ := set $a "prometheus.io/port" (toString .port) }}
{{- $_ := set $a "prometheus.io/path" "/metrics" }}
{{- end }}
{{- with .values.podAnnotations }}{{ $a = merge (deepCopy .) $a }}{{ end }}
{{- with $a }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Environment shared by both binaries: region, table prefix, endpoint override. */}}
{{- define "stepup.awsEnv" -}}
{{- with .Values.aws.region }}
- name: AWS_REGION
  value: {{ . | quote }}
- name: STEPUP_REGION
  value: {{ . | quote }}
{{- end }}
{{- with .Values.aws.tablePrefix }}
- name: ENV_PREFIX
  value: {{ . | quote }}
- name: STEPUP_TABLE_PREFIX
  value: {{ . | quote }}
{{- end }}
{{- with .Values.aws.dynamodbEndpoint }}
- name: STEPUP_DYNAMODB_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- end }}

{{/* Pod scheduling fields; call with the component's values. */}}
{{- define "stepup.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end }}

{{/* Labels of the monitoring objects: the standard ones and monitoring.labels. */}}
{{- define "stepup.monitoring.labels" -}}
{{ include "stepup.labels" (dict "ctx" . "component" "monitoring") }}
{{- with .Values.monitoring.labels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The alerts' runbook page: monitoring.prometheusRule.runbookUrl, else the docs page under the chart's home. */}}
{{- define "stepup.monitoring.runbookUrl" -}}
{{- default (printf "%s/blob/main/docs/rolling-out-a-policy.md" (trimSuffix "/" .Chart.Home)) .Values.monitoring.prometheusRule.runbookUrl }}
{{- end }}
