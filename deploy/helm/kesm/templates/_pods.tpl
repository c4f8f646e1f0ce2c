{{/*
Pods mode (mode: pods): `kesm controller` in a Deployment, each mapping's pollers in a
StatefulSet of `kesm poller` pods governed by a headless Service. docs/kubernetes.md,
"Pods mode: installing".
*/}}

{{- define "kesm.podsMode" -}}
{{- if eq (toString .Values.mode) "pods" }}true{{ end }}
{{- end }}

{{/* Labels of a workload's objects: kesm.labels with app.kubernetes.io/component set. (list ctx component) */}}
{{- define "kesm.componentLabels" -}}
{{- $l := include "kesm.labels" (index . 0) | fromYaml }}
{{- $_ := set $l "app.kubernetes.io/component" (index . 1) }}
{{- toYaml $l }}
{{- end }}

{{/* The controller's pods: the release's, component controller (never a poller pod). */}}
{{- define "kesm.controllerSelectorLabels" -}}
{{ include "kesm.selectorLabels" . }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "kesm.controllerName" -}}
{{- printf "%s-controller" (include "kesm.fullname" . | trunc 52 | trimSuffix "-") }}
{{- end }}

{{- define "kesm.pollerServiceAccountName" -}}
{{- $sa := .Values.pods.serviceAccount }}
{{- if $sa.create }}
{{- default (printf "%s-poller" (include "kesm.fullname" . | trunc 56 | trimSuffix "-")) $sa.name }}
{{- else }}
{{- default "default" $sa.name }}
{{- end }}
{{- end }}

{{/* A poller StatefulSet's pods. (list ctx statefulSetName) */}}
{{- define "kesm.pollerSelectorLabels" -}}
{{ include "kesm.selectorLabels" (index . 0) }}
app.kubernetes.io/component: poller
kesm/statefulset: {{ index . 1 }}
{{- end }}

{{/*
Every mapping as pods mode deploys it, as YAML {items: [...]}, each with: index, name,
statefulSet, service, pollersPerPod, minReplicas (ceil(minimumPollers / pollersPerPod)),
terminationGracePeriodSeconds, resources. Fails the render, naming the key, on a name that
cannot be a StatefulSet's or a Service's, a duplicate, or a pods.mappings entry that names
no mapping.
*/}}
{{- define "kesm.pods.mappings" -}}
{{- $items := list }}
{{- $stsSeen := dict }}
{{- $svcSeen := dict }}
{{- $names := list }}
{{- $fullname := include "kesm.fullname" . }}
{{- range $i, $m := .Values.config.mappings }}
{{- $key := printf "config.mappings[%d]" $i }}
{{- if not (kindIs "map" $m) }}
{{- fail (printf "%s: a mapping is a map with a name, source and function" $key) }}
{{- end }}
{{- if or (not (hasKey $m "name")) (not (kindIs "string" $m.name)) (eq $m.name "") }}
{{- fail (printf "%s.name: pods mode names each mapping's StatefulSet after it: give the mapping a name" $key) }}
{{- end }}
{{- $names = append $names $m.name }}
{{- $p := dict }}
{{- if hasKey $m "pods" }}
{{- if not (kindIs "map" $m.pods) }}
{{- fail (printf "%s.pods: expected a map (statefulSet, service, pollersPerPod, statusInterval)" $key) }}
{{- end }}
{{- $p = $m.pods }}
{{- end }}
{{- $sts := "" }}
{{- if $p.statefulSet }}
{{- $sts = toString $p.statefulSet }}
{{- if not (and (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $sts) (le (len $sts) 52)) }}
{{- fail (printf "%s.pods.statefulSet %q: a StatefulSet's name here must be a DNS-1123 label of at most 52 characters (lower-case letters, digits and '-', a letter or digit at each end; its pods are <name>-<ordinal>)" $key $sts) }}
{{- end }}
{{- else }}
{{- $sts = printf "kesm-%s" $m.name }}
{{- if not (and (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $sts) (le (len $sts) 52)) }}
{{- fail (printf "%s.name %q: the default StatefulSet name %q is not a DNS-1123 label of at most 52 characters (lower-case letters, digits and '-'); set %s.pods.statefulSet (and pods.service) to one" $key $m.name $sts $key) }}
{{- end }}
{{- end }}
{{- $svc := $sts }}
{{- if $p.service }}
{{- $svc = toString $p.service }}
{{- end }}
{{- if not (and (regexMatch "^[a-z]([-a-z0-9]*[a-z0-9])?$" $svc) (le (len $svc) 63)) }}
{{- fail (printf "%s.pods.service %q: a Service's name must be a DNS-1035 label (at most 63 lower-case letters, digits and '-', starting with a letter); set %s.pods.service" $key $svc $key) }}
{{- end }}
{{- if hasKey $stsSeen $sts }}
{{- fail (printf "%s: StatefulSet %s is already the StatefulSet of %s; give each mapping its own pods.statefulSet" $key $sts (get $stsSeen $sts)) }}
{{- end }}
{{- $_ := set $stsSeen $sts $key }}
{{- if hasKey $svcSeen $svc }}
{{- fail (printf "%s: Service %s is already the Service of %s; give each mapping its own pods.service" $key $svc (get $svcSeen $svc)) }}
{{- end }}
{{- $_ := set $svcSeen $svc $key }}
{{- if and $.Values.service.enabled (eq $svc $fullname) }}
{{- fail (printf "%s: the poller Service %s would have the name of the chart's Service (the controller's); set %s.pods.service (and pods.statefulSet), or fullnameOverride" $key $svc $key) }}
{{- end }}
{{- if eq $sts (include "kesm.controllerName" $) }}
{{- fail (printf "%s: StatefulSet %s would share its name (and its PodDisruptionBudget's) with the controller's; set %s.pods.statefulSet" $key $sts $key) }}
{{- end }}
{{- $ppp := 1 }}
{{- if hasKey $p "pollersPerPod" }}
{{- if not (regexMatch "^[0-9]+$" (toString $p.pollersPerPod)) }}
{{- fail (printf "%s.pods.pollersPerPod %v: expected a whole number from 1 to 64" $key $p.pollersPerPod) }}
{{- end }}
{{- $ppp = int $p.pollersPerPod }}
{{- end }}
{{- if or (lt $ppp 1) (gt $ppp 64) }}
{{- fail (printf "%s.pods.pollersPerPod %d: expected a whole number from 1 to 64" $key $ppp) }}
{{- end }}
{{- $min := 1 }}
{{- $grace := "30s" }}
{{- if hasKey $m "scaling" }}
{{- if and (kindIs "map" $m.scaling) (hasKey $m.scaling "minimumPollers") }}
{{- if not (regexMatch "^[0-9]+$" (toString $m.scaling.minimumPollers)) }}
{{- fail (printf "%s.scaling.minimumPollers %v: expected a whole number" $key $m.scaling.minimumPollers) }}
{{- end }}
{{- $min = int $m.scaling.minimumPollers }}
{{- end }}
{{- if and (kindIs "map" $m.scaling) (hasKey $m.scaling "gracePeriod") }}
{{- $grace = $m.scaling.gracePeriod }}
{{- end }}
{{- end }}
{{- $timeout := "30s" }}
{{- if and (kindIs "map" $m.function) (hasKey $m.function "timeout") }}
{{- $timeout = $m.function.timeout }}
{{- end }}
{{- $tgps := 0 }}
{{- if not (kindIs "invalid" $.Values.terminationGracePeriodSeconds) }}
{{- $tgps = $.Values.terminationGracePeriodSeconds | int64 }}
{{- else }}
{{- $ms := add (include "kesm.durationMs" (list $grace (printf "%s.scaling.gracePeriod" $key)) | int64) (include "kesm.durationMs" (list $timeout (printf "%s.function.timeout" $key)) | int64) }}
{{- $tgps = add (div (add $ms 999) 1000) 20 }}
{{- end }}
{{- $res := $.Values.pods.resources }}
{{- $own := get $.Values.pods.mappings $m.name }}
{{- if and $own (hasKey $own "resources") }}
{{- $res = $own.resources }}
{{- end }}
{{- $items = append $items (dict "index" $i "name" $m.name "statefulSet" $sts "service" $svc "pollersPerPod" $ppp "minReplicas" (div (add $min (sub $ppp 1)) $ppp) "terminationGracePeriodSeconds" $tgps "resources" $res) }}
{{- end }}
{{- range $name, $_ := .Values.pods.mappings }}
{{- if not (has $name $names) }}
{{- fail (printf "pods.mappings.%s: no mapping named %s in config.mappings (%s)" $name $name (join ", " $names)) }}
{{- end }}
{{- end }}
{{- toYaml (dict "items" $items) }}
{{- end }}

{{/*
The replicas to render for a StatefulSet: the live object's spec.replicas when it exists (the
controller owns that count: an upgrade must not reset it), else the mapping's minimum.
helm template and --dry-run=client see no cluster: they always render the minimum.
(list ctx mapping-item)
*/}}
{{- define "kesm.pods.replicas" -}}
{{- $ctx := index . 0 }}
{{- $m := index . 1 }}
{{- $live := lookup "apps/v1" "StatefulSet" $ctx.Release.Namespace $m.statefulSet }}
{{- if and $live (kindIs "map" $live.spec) (hasKey $live.spec "replicas") }}
{{- $live.spec.replicas | int }}
{{- else }}
{{- $m.minReplicas | int }}
{{- end }}
{{- end }}

{{/*
A kesm pod's spec (pods mode): the config, /tmp, the Secrets, the security context and the
placement values of the chart. (dict ctx args resources tgps serviceAccount automount spreadLabels)
*/}}
{{- define "kesm.pods.podSpec" -}}
{{- $ := .ctx -}}
serviceAccountName: {{ .serviceAccount }}
automountServiceAccountToken: {{ .automount }}
terminationGracePeriodSeconds: {{ .tgps }}
{{- with $.Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $.Values.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
containers:
  - name: kesm
    image: {{ include "kesm.image" $ | quote }}
    imagePullPolicy: {{ $.Values.image.pullPolicy }}
    args:
      {{- range .args }}
      - {{ . | quote }}
      {{- end }}
    env:
      # The pod's name: the controller's identity in the Lease; a poller's instance id.
      - name: POD_NAME
        valueFrom:
          fieldRef:
            fieldPath: metadata.name
      {{- with $.Values.extraEnv }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    ports:
      - name: http
        containerPort: {{ include "kesm.port" $ }}
        protocol: TCP
    {{- with $.Values.startupProbe }}
    startupProbe:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with $.Values.livenessProbe }}
    livenessProbe:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with $.Values.readinessProbe }}
    readinessProbe:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .resources }}
    resources:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with $.Values.securityContext }}
    securityContext:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    volumeMounts:
      - name: config
        mountPath: /etc/kesm
        readOnly: true
      - name: tmp
        mountPath: /tmp
      {{- range $i, $s := $.Values.kafkaSecrets }}
      - name: kafka-secret-{{ $i }}
        mountPath: {{ $s.mountPath }}
        readOnly: true
      {{- end }}
      {{- with $.Values.extraVolumeMounts }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
volumes:
  - name: config
    configMap:
      name: {{ include "kesm.fullname" $ }}
  # The root filesystem is read-only; nothing but /tmp is writable.
  - name: tmp
    emptyDir:
      sizeLimit: 64Mi
  {{- range $i, $s := $.Values.kafkaSecrets }}
  - name: kafka-secret-{{ $i }}
    secret:
      secretName: {{ $s.name }}
      defaultMode: {{ $s.defaultMode | default 288 }}
      optional: {{ $s.optional | default false }}
      {{- with $s.items }}
      items:
        {{- toYaml . | nindent 8 }}
      {{- end }}
  {{- end }}
  {{- with $.Values.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with $.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- $spread := .spreadLabels }}
{{- with $.Values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- range . }}
  {{- $c := deepCopy . }}
  {{- if not $c.labelSelector }}
  {{- $_ := set $c "labelSelector" (dict "matchLabels" $spread) }}
  {{- end }}
  - {{- toYaml $c | nindent 4 }}
  {{- end }}
{{- end }}
{{- end }}
