{{/*
Chart name (63 characters at most: DNS label).
*/}}
{{- define "voice-loadtest.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name. 52 characters at most so "<fullname>-master" and friends stay within 63;
a release name that already contains the chart name is used as is.
*/}}
{{- define "voice-loadtest.fullname" -}}
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

{{/*
Chart label value.
*/}}
{{- define "voice-loadtest.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels (every object).
*/}}
{{- define "voice-loadtest.labels" -}}
helm.sh/chart: {{ include "voice-loadtest.chart" . }}
{{ include "voice-loadtest.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: voice-loadtest
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels (stable: never the chart version).
*/}}
{{- define "voice-loadtest.selectorLabels" -}}
app.kubernetes.io/name: {{ include "voice-loadtest.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of one component: (dict "ctx" $ "component" "master").
*/}}
{{- define "voice-loadtest.componentLabels" -}}
{{ include "voice-loadtest.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Selector labels of one component: (dict "ctx" $ "component" "worker").
*/}}
{{- define "voice-loadtest.componentSelectorLabels" -}}
{{ include "voice-loadtest.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Names of the objects.
*/}}
{{- define "voice-loadtest.masterName" -}}
{{- printf "%s-master" (include "voice-loadtest.fullname" .) }}
{{- end }}

{{- define "voice-loadtest.workerName" -}}
{{- printf "%s-worker" (include "voice-loadtest.fullname" .) }}
{{- end }}

{{- define "voice-loadtest.agentName" -}}
{{- printf "%s-agent" (include "voice-loadtest.fullname" .) }}
{{- end }}

{{- define "voice-loadtest.configName" -}}
{{- printf "%s-config" (include "voice-loadtest.fullname" .) }}
{{- end }}

{{- define "voice-loadtest.filesName" -}}
{{- printf "%s-files" (include "voice-loadtest.fullname" .) }}
{{- end }}

{{- define "voice-loadtest.reportsClaimName" -}}
{{- default (printf "%s-reports" (include "voice-loadtest.fullname" .)) .Values.reports.persistence.existingClaim }}
{{- end }}

{{/*
The run Job is named after the release revision: a Job's pod template is immutable, so every
`helm upgrade` in mode=run creates a new Job (a new run).
*/}}
{{- define "voice-loadtest.jobName" -}}
{{- printf "%s-run-%d" (include "voice-loadtest.masterName" .) (int .Release.Revision) }}
{{- end }}

{{/*
ServiceAccount name.
*/}}
{{- define "voice-loadtest.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "voice-loadtest.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image reference: [registry/]repository@digest, else [registry/]repository:tag (tag defaults to
appVersion). The registry is global.imageRegistry, else image.registry, else none.
*/}}
{{- define "voice-loadtest.image" -}}
{{- $registry := default .Values.image.registry (dig "imageRegistry" "" (.Values.global | default dict)) | trimSuffix "/" }}
{{- $repository := .Values.image.repository }}
{{- if $registry }}
{{- $repository = printf "%s/%s" $registry $repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Pull secrets of every pod: imagePullSecrets, then global.imagePullSecrets; each entry a name or
{name: ...}; duplicates dropped.
*/}}
{{- define "voice-loadtest.imagePullSecrets" -}}
{{- $names := list }}
{{- range concat .Values.imagePullSecrets (dig "imagePullSecrets" list (.Values.global | default dict)) }}
{{- $name := . }}
{{- if kindIs "map" . }}
{{- $name = get . "name" }}
{{- end }}
{{- if and $name (not (has $name $names)) }}
{{- $names = append $names $name }}
{{- end }}
{{- end }}
{{- range $names }}
- name: {{ . }}
{{- end }}
{{- end }}

{{/*
StorageClass of a claim the chart creates: its own, else global.storageClass ("" = the
cluster's default).
*/}}
{{- define "voice-loadtest.storageClass" -}}
{{- default (dig "storageClass" "" (.ctx.Values.global | default dict)) .own }}
{{- end }}

{{/*
ServiceMonitor/PodMonitor API version: metrics.monitorApiVersion, else the group the cluster
serves (prometheus-operator first, then Azure Monitor managed Prometheus), else
prometheus-operator's.
*/}}
{{- define "voice-loadtest.monitorApiVersion" -}}
{{- $kind := .kind }}
{{- with .ctx }}
{{- if .Values.metrics.monitorApiVersion }}
{{- .Values.metrics.monitorApiVersion }}
{{- else if .Capabilities.APIVersions.Has (printf "monitoring.coreos.com/v1/%s" $kind) }}
{{- "monitoring.coreos.com/v1" }}
{{- else if .Capabilities.APIVersions.Has (printf "azmonitoring.coreos.com/v1/%s" $kind) }}
{{- "azmonitoring.coreos.com/v1" }}
{{- else }}
{{- "monitoring.coreos.com/v1" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The scenarios file: the ConfigMap holding it ("" when none) and its key.
*/}}
{{- define "voice-loadtest.scenariosConfigMap" -}}
{{- if .Values.scenarios.configMap }}
{{- .Values.scenarios.configMap }}
{{- else if .Values.scenarios.inline }}
{{- printf "%s-scenarios" (include "voice-loadtest.fullname" .) }}
{{- end }}
{{- end }}

{{- define "voice-loadtest.scenariosKey" -}}
{{- if .Values.scenarios.configMap }}
{{- .Values.scenarios.key }}
{{- else }}
{{- "scenarios.yaml" }}
{{- end }}
{{- end }}

{{/*
The agent's WebSocket URL: target.wsUrl, else the in-cluster simulator, else "".
*/}}
{{- define "voice-loadtest.wsUrl" -}}
{{- if .Values.target.wsUrl }}
{{- .Values.target.wsUrl }}
{{- else if .Values.agentSimulator.enabled }}
{{- printf "ws://%s:8010/api/v1/media/stream" (include "voice-loadtest.agentName" .) }}
{{- end }}
{{- end }}

{{/*
Workers a headless master waits for before it starts.
*/}}
{{- define "voice-loadtest.expectWorkers" -}}
{{- if .Values.worker.keda.enabled }}
{{- max 1 .Values.worker.keda.minReplicas }}
{{- else if .Values.worker.autoscaling.enabled }}
{{- max 1 .Values.worker.autoscaling.minReplicas }}
{{- else }}
{{- max 1 .Values.worker.replicas }}
{{- end }}
{{- end }}

{{/*
Pod labels shared by all pods: (dict "ctx" $ "component" "master" "extra" .Values.master.podLabels).
*/}}
{{- define "voice-loadtest.podLabels" -}}
{{ include "voice-loadtest.componentLabels" (dict "ctx" .ctx "component" .component) }}
{{- if .ctx.Values.workloadIdentity.enabled }}
azure.workload.identity/use: "true"
{{- end }}
{{- with .extra }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Pod annotations: config checksum, Prometheus scrape hints, user annotations.
(dict "ctx" $ "port" 9646 "extra" .Values.master.podAnnotations)
*/}}
{{- define "voice-loadtest.podAnnotations" -}}
checksum/config: {{ include (print .ctx.Template.BasePath "/configmap.yaml") .ctx | sha256sum }}
{{- with .ctx.Values.scenarios.inline }}
checksum/scenarios: {{ toYaml . | sha256sum }}
{{- end }}
{{- if and .ctx.Values.metrics.podAnnotations .port }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- with .extra }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Pod-level settings shared by every pod.
*/}}
{{- define "voice-loadtest.podCommon" -}}
serviceAccountName: {{ include "voice-loadtest.serviceAccountName" . }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
{{- with include "voice-loadtest.imagePullSecrets" . }}
imagePullSecrets:
  {{- . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}

{{/*
Scheduling of one component: (dict "values" .Values.master).
*/}}
{{- define "voice-loadtest.scheduling" -}}
{{- with .values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Caller environment shared by master and workers: the ConfigMap and the agent's token.
*/}}
{{- define "voice-loadtest.callerEnvFrom" -}}
- configMapRef:
    name: {{ include "voice-loadtest.configName" . }}
{{- end }}

{{- define "voice-loadtest.callerEnv" -}}
{{- if .Values.target.existingSecret }}
- name: WS_AUTH_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.target.existingSecret }}
      key: {{ .Values.target.authTokenKey }}
{{- end }}
{{- end }}

{{/*
Checks that templates cannot express in the schema.
*/}}
{{- define "voice-loadtest.validate" -}}
{{- if and .Values.worker.autoscaling.enabled .Values.worker.keda.enabled }}
{{- fail "worker.autoscaling.enabled and worker.keda.enabled are exclusive: KEDA creates its own HPA" }}
{{- end }}
{{- if le (int .Values.worker.terminationGracePeriodSeconds) (int .Values.load.stopTimeoutSeconds) }}
{{- fail (printf "worker.terminationGracePeriodSeconds (%d) must exceed load.stopTimeoutSeconds (%d): a stopping worker needs time to hand its callers back" (int .Values.worker.terminationGracePeriodSeconds) (int .Values.load.stopTimeoutSeconds)) }}
{{- end }}
{{- if and .Values.worker.autoscaling.enabled (gt (int .Values.worker.autoscaling.minReplicas) (int .Values.worker.autoscaling.maxReplicas)) }}
{{- fail "worker.autoscaling.minReplicas must not exceed maxReplicas" }}
{{- end }}
{{- if and .Values.worker.keda.enabled (gt (int .Values.worker.keda.minReplicas) (int .Values.worker.keda.maxReplicas)) }}
{{- fail "worker.keda.minReplicas must not exceed maxReplicas" }}
{{- end }}
{{- if and .Values.scenarios.configMap .Values.scenarios.inline }}
{{- fail "scenarios.configMap and scenarios.inline are exclusive: give the scenarios file one way" }}
{{- end }}
{{- with .Values.master.ingress }}
{{- if and .enabled (not $.Values.master.auth.enabled) (not .allowAnonymous) }}
{{- fail "master.ingress.enabled exposes the Locust web UI, which starts load against any URL typed into it: set master.auth.enabled=true with master.auth.existingSecret, or master.ingress.allowAnonymous=true if a login in front of the ingress protects it" }}
{{- end }}
{{- end }}
{{- range $name := list "serviceMonitor" "podMonitor" }}
{{- $monitor := get $.Values.metrics $name }}
{{- if and $monitor.enabled (gt (int (include "voice-loadtest.durationMs" $monitor.scrapeTimeout)) (int (include "voice-loadtest.durationMs" $monitor.interval))) }}
{{- fail (printf "metrics.%s.scrapeTimeout (%s) must not exceed its interval (%s): Prometheus refuses such a scrape" $name $monitor.scrapeTimeout $monitor.interval) }}
{{- end }}
{{- end }}
{{- if not (include "voice-loadtest.wsUrl" .) }}
{{- if eq .Values.mode "run" }}
{{- fail "mode=run needs a target: set target.wsUrl (ws:// or wss://) or agentSimulator.enabled=true" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The scenarios file in master and workers: SCENARIOS_FILE, its read-only mount at /scenarios and
the volume (nothing when no scenarios file is given).
*/}}
{{- define "voice-loadtest.scenariosEnv" -}}
{{- if include "voice-loadtest.scenariosConfigMap" . }}
- name: SCENARIOS_FILE
  value: {{ printf "/scenarios/%s" (include "voice-loadtest.scenariosKey" .) | quote }}
{{- end }}
{{- end }}

{{- define "voice-loadtest.scenariosMount" -}}
{{- if include "voice-loadtest.scenariosConfigMap" . }}
- name: scenarios
  mountPath: /scenarios
  readOnly: true
{{- end }}
{{- end }}

{{- define "voice-loadtest.scenariosVolume" -}}
{{- with include "voice-loadtest.scenariosConfigMap" . }}
- name: scenarios
  configMap:
    name: {{ . }}
    items:
      - key: {{ include "voice-loadtest.scenariosKey" $ }}
        path: {{ include "voice-loadtest.scenariosKey" $ }}
{{- end }}
{{- end }}

{{/*
A duration of the schema's form (NUMBER plus ms, s, m or h) in milliseconds.
*/}}
{{- define "voice-loadtest.durationMs" -}}
{{- $unit := regexFind "[a-z]+$" . }}
{{- $number := int (trimSuffix $unit .) }}
{{- mul $number (get (dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000) $unit) }}
{{- end }}
