{{/* Names: at most 63 characters (a DNS label), without a trailing dash. */}}
{{- define "kesm.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kesm.fullname" -}}
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

{{- define "kesm.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kesm.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kesm.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kesm.labels" -}}
helm.sh/chart: {{ include "kesm.chart" . }}
{{ include "kesm.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: event-source-mapping
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "kesm.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kesm.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kesm.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The user's leaderElection section (a map, possibly empty). */}}
{{- define "kesm.leaderElectionValues" -}}
{{- $le := dict }}
{{- if hasKey .Values.config "leaderElection" }}
{{- $le = .Values.config.leaderElection | default dict }}
{{- end }}
{{- toYaml $le }}
{{- end }}

{{/* The Lease kesm takes: config.leaderElection.leaseName, default the release's fullname. */}}
{{- define "kesm.leaseName" -}}
{{- $le := include "kesm.leaderElectionValues" . | fromYaml }}
{{- default (include "kesm.fullname" .) $le.leaseName }}
{{- end }}

{{/* Where the Lease lives: config.leaderElection.namespace, default the release's namespace. */}}
{{- define "kesm.leaseNamespace" -}}
{{- $le := include "kesm.leaderElectionValues" . | fromYaml }}
{{- default .Release.Namespace $le.namespace }}
{{- end }}

{{/* "false" when the config turns leader election off, else "true" (auto is on in a pod). */}}
{{- define "kesm.leaderElectionEnabled" -}}
{{- $le := include "kesm.leaderElectionValues" . | fromYaml }}
{{- if and (hasKey $le "enabled") (eq (toString $le.enabled) "false") }}false{{ else }}true{{ end }}
{{- end }}

{{/* The config as rendered into the ConfigMap: the user's, with the Lease name filled in. */}}
{{- define "kesm.config" -}}
{{- $cfg := deepCopy .Values.config }}
{{- $le := include "kesm.leaderElectionValues" . | fromYaml }}
{{- $_ := set $cfg "leaderElection" (merge $le (dict "leaseName" (include "kesm.fullname" .))) }}
{{- if include "kesm.podsMode" . }}
{{- /* The names the chart gives each mapping's StatefulSet and Service, for the controller. */}}
{{- $pods := (include "kesm.pods.mappings" . | fromYaml).items }}
{{- range $i, $m := $cfg.mappings }}
{{- $p := deepCopy (default dict $m.pods) }}
{{- $_ := set $p "statefulSet" (index $pods $i).statefulSet }}
{{- $_ := set $p "service" (index $pods $i).service }}
{{- $_ := set $m "pods" $p }}
{{- end }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* The container port: the port of config.server.listen (default 9464). */}}
{{- define "kesm.port" -}}
{{- $listen := "0.0.0.0:9464" }}
{{- if and .Values.config.server .Values.config.server.listen }}
{{- $listen = toString .Values.config.server.listen }}
{{- end }}
{{- $port := regexFind "[0-9]+$" $listen }}
{{- if or (not $port) (eq $port "0") }}
{{- fail (printf "config.server.listen %q: give a fixed port (the probes and the Service need it)" $listen) }}
{{- end }}
{{- if or (hasPrefix "127." $listen) (hasPrefix "localhost:" $listen) (hasPrefix "[::1]:" $listen) }}
{{- fail (printf "config.server.listen %q is a loopback address: the kubelet's probes and Prometheus reach the pod on its IP; use 0.0.0.0:%s" $listen $port) }}
{{- end }}
{{- $port }}
{{- end }}

{{/*
A kesm duration (docs/configuration.md, "Value types": 500ms, 5s, 2m, 1h, 1.5s, 1m30s, 0) in
milliseconds, as a string. Anything else fails the render, naming the key.
*/}}
{{- define "kesm.durationMs" -}}
{{- $d := toString (index . 0) }}
{{- $key := index . 1 }}
{{- if eq $d "0" }}0{{- else }}
{{- if not (regexMatch "^([0-9]+(\\.[0-9]+)?(ms|h|m|s))+$" $d) }}
{{- fail (printf "%s: %q is not a duration (a number and a unit: 500ms, 30s, 2m, 1h)" $key $d) }}
{{- end }}
{{- $total := 0.0 }}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(ms|h|m|s)" $d -1 }}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" . }}
{{- $unit := trimPrefix $num . }}
{{- $factor := get (dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000) $unit }}
{{- $total = addf $total (mulf (float64 $num) $factor) }}
{{- end }}
{{- ceil $total | int64 }}
{{- end }}
{{- end }}

{{/*
terminationGracePeriodSeconds: the value, or the largest gracePeriod + function.timeout over
the mappings (kesm's defaults 30s and 30s) plus 20 s (operations.md, "Shutdown").
*/}}
{{- define "kesm.terminationGracePeriodSeconds" -}}
{{- if not (kindIs "invalid" .Values.terminationGracePeriodSeconds) }}
{{- .Values.terminationGracePeriodSeconds | int64 }}
{{- else }}
{{- $maxMs := 0 }}
{{- range $i, $m := .Values.config.mappings }}
{{- $grace := "30s" }}
{{- $timeout := "30s" }}
{{- if and (kindIs "map" $m) (kindIs "map" $m.scaling) (hasKey $m.scaling "gracePeriod") }}
{{- $grace = $m.scaling.gracePeriod }}
{{- end }}
{{- if and (kindIs "map" $m) (kindIs "map" $m.function) (hasKey $m.function "timeout") }}
{{- $timeout = $m.function.timeout }}
{{- end }}
{{- $ms := add (include "kesm.durationMs" (list $grace (printf "config.mappings[%d].scaling.gracePeriod" $i)) | int64) (include "kesm.durationMs" (list $timeout (printf "config.mappings[%d].function.timeout" $i)) | int64) }}
{{- $maxMs = max $maxMs $ms }}
{{- end }}
{{- add (div (add $maxMs 999) 1000) 20 }}
{{- end }}
{{- end }}
