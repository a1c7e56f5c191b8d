{{/*
Names and labels.
*/}}
{{- define "gatehouse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gatehouse.fullname" -}}
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

{{- define "gatehouse.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gatehouse.labels" -}}
helm.sh/chart: {{ include "gatehouse.chart" . }}
{{ include "gatehouse.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gatehouse
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "gatehouse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gatehouse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end }}

{{- define "gatehouse.redis.fullname" -}}
{{- printf "%s-redis" (include "gatehouse.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gatehouse.redis.labels" -}}
helm.sh/chart: {{ include "gatehouse.chart" . }}
{{ include "gatehouse.redis.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.redis.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gatehouse
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "gatehouse.redis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gatehouse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: redis
{{- end }}

{{- define "gatehouse.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gatehouse.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "gatehouse.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}:{{ $tag }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ $tag }}
{{- end -}}
{{- end }}

{{/*
Paths inside the container (the image documents the same ones).
*/}}
{{- define "gatehouse.configDir" -}}/etc/gatehouse{{- end }}
{{- define "gatehouse.configFile" -}}/etc/gatehouse/gatehouse.yaml{{- end }}
{{- define "gatehouse.keysDir" -}}/etc/gatehouse/keys{{- end }}
{{- define "gatehouse.clusterJwksDir" -}}/etc/gatehouse/cluster-jwks{{- end }}
{{- define "gatehouse.redisCaDir" -}}/etc/gatehouse/redis-ca{{- end }}

{{/*
Replicas and the store. The memory store lives in one process: more than one pod would split
every session, code and grant between pods that cannot see each other's.
*/}}
{{/*
"true" when the chart spreads the replicas itself: several of them (or an autoscaler) and
spreadReplicas on. Each of affinity and topologySpreadConstraints given by hand replaces its default.
*/}}
{{- define "gatehouse.spread" -}}
{{- if and .Values.spreadReplicas (or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1)) -}}true{{- end -}}
{{- end }}

{{- define "gatehouse.storeType" -}}
{{- .Values.store.type }}
{{- end }}

{{- define "gatehouse.validate" -}}
{{- $store := .Values.store.type -}}
{{- if and (eq $store "memory") (gt (int .Values.replicaCount) 1) -}}
{{- fail (printf "replicaCount is %d, but store.type is memory: the memory store keeps sessions, codes and grants inside one process, so a second pod would not see them. Set store.type=redis (with store.redis.url, or redis.enabled=true for a trial) to run more than one replica." (int .Values.replicaCount)) -}}
{{- end -}}
{{- if and (eq $store "memory") .Values.autoscaling.enabled -}}
{{- fail "autoscaling.enabled is true, but store.type is memory: the memory store keeps sessions, codes and grants inside one process, so pods added by the autoscaler would not see them. Set store.type=redis (with store.redis.url, or redis.enabled=true for a trial) to autoscale." -}}
{{- end -}}
{{- if and (eq $store "memory") .Values.redis.enabled -}}
{{- fail "redis.enabled deploys a Redis, but store.type is memory, so Gatehouse would not use it. Set store.type=redis." -}}
{{- end -}}
{{- if eq $store "redis" -}}
{{- $urlSecret := .Values.store.redis.urlSecret.name -}}
{{- if and .Values.redis.enabled (or .Values.store.redis.url $urlSecret) -}}
{{- fail "give either store.redis.url or store.redis.urlSecret (an external Redis) or redis.enabled=true (the in-chart Redis), not both." -}}
{{- end -}}
{{- if not (or .Values.redis.enabled .Values.store.redis.url $urlSecret) -}}
{{- fail "store.type is redis: set store.redis.url to your Redis (e.g. rediss://redis.example.com:6380/0), or store.redis.urlSecret to a Secret holding that URL, or redis.enabled=true for the in-chart Redis (trials only)." -}}
{{- end -}}
{{- if and .Values.store.redis.url $urlSecret -}}
{{- fail "give either store.redis.url or store.redis.urlSecret.name, not both." -}}
{{- end -}}
{{- if and $urlSecret (or .Values.store.redis.username .Values.store.redis.password .Values.store.redis.passwordSecret.name) -}}
{{- fail "the URL in store.redis.urlSecret carries its own credentials: leave store.redis.username, store.redis.password and store.redis.passwordSecret.name empty." -}}
{{- end -}}
{{- if and $urlSecret (hasKey .Values.secretEnv.values "REDIS_URL") -}}
{{- fail "secretEnv.values.REDIS_URL clashes with store.redis.urlSecret, which the chart injects as REDIS_URL; remove one." -}}
{{- end -}}
{{- with .Values.store.redis.url -}}
{{- if not (regexMatch "^rediss?://" .) -}}
{{- fail (printf "store.redis.url must start with redis:// or rediss:// (TLS); got %q." .) -}}
{{- end -}}
{{- if contains "@" . -}}
{{- fail "store.redis.url must not contain credentials: put the password in a Secret (store.redis.passwordSecret) or in store.redis.password, and a user name in store.redis.username; the chart adds them to the URL." -}}
{{- end -}}
{{- end -}}
{{- $r := .Values.store.redis -}}
{{- if and $r.sentinels $r.clusterNodes -}}
{{- fail "give either store.redis.sentinels (Redis Sentinel) or store.redis.clusterNodes (Redis Cluster), not both." -}}
{{- end -}}
{{- if and $r.sentinels (not $r.sentinelMasterName) -}}
{{- fail "store.redis.sentinels needs store.redis.sentinelMasterName, the master group name the sentinels monitor." -}}
{{- end -}}
{{- if and $r.sentinelPasswordSecret.name (not $r.sentinels) -}}
{{- fail "store.redis.sentinelPasswordSecret is the password of sentinels: it needs store.redis.sentinels." -}}
{{- end -}}
{{- if and $r.sentinelPasswordSecret.name (hasKey .Values.secretEnv.values "SENTINEL_PASSWORD") -}}
{{- fail "secretEnv.values.SENTINEL_PASSWORD clashes with store.redis.sentinelPasswordSecret, which the chart injects as SENTINEL_PASSWORD; remove one." -}}
{{- end -}}
{{- if and .Values.redis.enabled (or $r.sentinels $r.clusterNodes) -}}
{{- fail "the in-chart Redis (redis.enabled) is one standalone server: it has no sentinels or cluster nodes." -}}
{{- end -}}
{{- if and $r.password $r.passwordSecret.name -}}
{{- fail "give either store.redis.password or store.redis.passwordSecret.name, not both." -}}
{{- end -}}
{{- end -}}
{{- if not (kindIs "map" .Values.config) -}}
{{- fail "config must be a map: the gateway configuration (gatehouse.yaml) as YAML." -}}
{{- end -}}
{{- range $key := list "listen" "store" "keys" "metrics" -}}
{{- if hasKey $.Values.config $key -}}
{{- fail (printf "config.%s is written by the chart; use the chart values instead (listen: containerPort and listenHost; store: store.* and redis.*; keys: signingKeys.*; metrics: metrics.enabled, metrics.port and metrics.path)." $key) -}}
{{- end -}}
{{- end -}}
{{- if not .Values.config.publicUrl -}}
{{- fail "config.publicUrl is required: the public https origin MCP clients use, e.g. https://mcp.example.com (the Ingress host when ingress.enabled)." -}}
{{- end -}}
{{- if not .Values.config.resources -}}
{{- fail "config.resources needs at least one MCP endpoint, e.g. [{id: files, name: Files, path: /mcp, upstream: http://files-mcp:3000/mcp}]." -}}
{{- end -}}
{{- if and .Values.signingKeys.existingSecret .Values.signingKeys.files -}}
{{- fail "give either signingKeys.existingSecret or signingKeys.files, not both." -}}
{{- end -}}
{{- range $i, $k := .Values.signingKeys.keys -}}
{{- if and (not $.Values.signingKeys.existingSecret) (not (hasKey $.Values.signingKeys.files $k.file)) -}}
{{- fail (printf "signingKeys.keys[%d].file is %q, but signingKeys.files has no such entry (or set signingKeys.existingSecret to a Secret that holds it)." $i $k.file) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.signingKeys.files (not .Values.signingKeys.keys) -}}
{{- fail "signingKeys.files holds keys, but signingKeys.keys does not list them: add {file, kid, alg, active} for each." -}}
{{- end -}}
{{- if and (hasKey .Values.secretEnv.values "REDIS_PASSWORD") (include "gatehouse.redisPasswordRef" .) -}}
{{- fail "secretEnv.values.REDIS_PASSWORD clashes with the Redis password the chart manages (store.redis.password, store.redis.passwordSecret or the in-chart Redis); remove one." -}}
{{- end -}}
{{- if not .Values.signingKeys.existingSecret -}}
{{- range $name, $_ := .Values.secretEnv.values -}}
{{- if hasKey $.Values.signingKeys.files $name -}}
{{- fail (printf "%q is both a signing key file (signingKeys.files) and an environment variable (secretEnv.values); rename one." $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $grace := include "gatehouse.graceSeconds" . | int -}}
{{- with .Values.terminationGracePeriodSeconds -}}
{{- if le (int .) (add $grace (int $.Values.preStopSleepSeconds)) -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be above preStopSleepSeconds (%d) + config.shutdown.graceSeconds (%d), or Kubernetes kills Gatehouse before it has drained its requests." (int .) (int $.Values.preStopSleepSeconds) $grace) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.metrics.enabled (eq (int .Values.metrics.port) (int .Values.containerPort)) -}}
{{- fail (printf "metrics.port (%d) must differ from containerPort: metrics have a listener of their own, so the network can keep them private." (int .Values.metrics.port)) -}}
{{- end -}}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) -}}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled=true (the Service port it scrapes)." -}}
{{- end -}}
{{- end }}

{{- define "gatehouse.graceSeconds" -}}
{{- $shutdown := .Values.config.shutdown | default dict -}}
{{- if hasKey $shutdown "graceSeconds" -}}{{ $shutdown.graceSeconds | int }}{{- else -}}10{{- end -}}
{{- end }}

{{- define "gatehouse.terminationGracePeriodSeconds" -}}
{{- if .Values.terminationGracePeriodSeconds -}}
{{- .Values.terminationGracePeriodSeconds | int -}}
{{- else -}}
{{- add (include "gatehouse.graceSeconds" . | int) (int .Values.preStopSleepSeconds) 15 -}}
{{- end -}}
{{- end }}

{{/*
Where REDIS_PASSWORD comes from: a Secret you manage, or the chart's Secret (store.redis.password,
or the in-chart Redis's password). Empty when Redis needs no password.
*/}}
{{- define "gatehouse.redisPasswordRef" -}}
{{- if eq .Values.store.type "redis" -}}
{{- if .Values.redis.enabled -}}
{{- dict "name" (include "gatehouse.fullname" .) "key" "REDIS_PASSWORD" | toJson -}}
{{- else if .Values.store.redis.passwordSecret.name -}}
{{- dict "name" .Values.store.redis.passwordSecret.name "key" .Values.store.redis.passwordSecret.key | toJson -}}
{{- else if .Values.store.redis.password -}}
{{- dict "name" (include "gatehouse.fullname" .) "key" "REDIS_PASSWORD" | toJson -}}
{{- end -}}
{{- end -}}
{{- end }}

{{/*
The in-chart Redis's password: the value given, else the one already in the cluster (so an
upgrade keeps it), else a new random one.
*/}}
{{- define "gatehouse.redis.password" -}}
{{- if .Values.redis.password -}}
{{- .Values.redis.password -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "gatehouse.fullname" .) -}}
{{- if and $existing $existing.data (hasKey $existing.data "REDIS_PASSWORD") -}}
{{- index $existing.data "REDIS_PASSWORD" | b64dec -}}
{{- else -}}
{{- randAlphaNum 32 -}}
{{- end -}}
{{- end -}}
{{- end }}

{{/*
The gateway configuration: config from the values, plus listen, store and keys.
*/}}
{{- define "gatehouse.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $_ := set $cfg "listen" (dict "host" .Values.listenHost "port" (int .Values.containerPort)) -}}
{{- $store := dict "type" .Values.store.type -}}
{{- if eq .Values.store.type "redis" -}}
{{- $url := "" -}}
{{- if .Values.redis.enabled -}}
{{- $url = printf "redis://%s:6379/0" (include "gatehouse.redis.fullname" .) -}}
{{- else if .Values.store.redis.urlSecret.name -}}
{{- /* The whole URL, credentials included, stays in the Secret: the pod gets it as REDIS_URL. */ -}}
{{- $url = "${REDIS_URL}" -}}
{{- else -}}
{{- $url = .Values.store.redis.url -}}
{{- end -}}
{{- if include "gatehouse.redisPasswordRef" . -}}
{{- $scheme := regexFind "^rediss?://" $url -}}
{{- $userinfo := printf "%s:${REDIS_PASSWORD}" (.Values.store.redis.username | default "") -}}
{{- $url = printf "%s%s@%s" $scheme $userinfo (trimPrefix $scheme $url) -}}
{{- end -}}
{{- $redis := dict "url" $url "keyPrefix" .Values.store.redis.keyPrefix -}}
{{- $tls := dict -}}
{{- if and (not .Values.redis.enabled) .Values.store.redis.tls.caSecret.name -}}
{{- $_ := set $tls "caFile" (printf "%s/%s" (include "gatehouse.redisCaDir" .) .Values.store.redis.tls.caSecret.key) -}}
{{- end -}}
{{- if and (not .Values.redis.enabled) .Values.store.redis.tls.servername -}}
{{- $_ := set $tls "servername" .Values.store.redis.tls.servername -}}
{{- end -}}
{{- if $tls -}}
{{- $_ := set $redis "tls" $tls -}}
{{- end -}}
{{- with .Values.store.redis.sentinels -}}
{{- $_ := set $redis "sentinels" . -}}
{{- $_ := set $redis "sentinelMasterName" $.Values.store.redis.sentinelMasterName -}}
{{- if $.Values.store.redis.sentinelPasswordSecret.name -}}
{{- $_ := set $redis "sentinelPassword" "${SENTINEL_PASSWORD}" -}}
{{- end -}}
{{- end -}}
{{- with .Values.store.redis.clusterNodes -}}
{{- $_ := set $redis "clusterNodes" . -}}
{{- end -}}
{{- if gt (int .Values.store.redis.waitForReplicas.replicas) 0 -}}
{{- $_ := set $redis "waitForReplicas" (dict "replicas" (int .Values.store.redis.waitForReplicas.replicas) "timeoutMs" (int .Values.store.redis.waitForReplicas.timeoutMs)) -}}
{{- end -}}
{{- $_ := set $store "redis" $redis -}}
{{- end -}}
{{- $_ := set $cfg "store" $store -}}
{{- $keys := list -}}
{{- range .Values.signingKeys.keys -}}
{{- $k := dict "file" (printf "%s/%s" (include "gatehouse.keysDir" $) .file) -}}
{{- if .kid -}}{{- $_ := set $k "kid" (toString .kid) -}}{{- end -}}
{{- if .alg -}}{{- $_ := set $k "alg" .alg -}}{{- end -}}
{{- if hasKey . "active" -}}{{- $_ := set $k "active" .active -}}{{- end -}}
{{- $keys = append $keys $k -}}
{{- end -}}
{{- $_ := set $cfg "keys" $keys -}}
{{- if .Values.clusterWorkloads.enabled -}}
{{- $wi := deepCopy (get $cfg "workloadIdentity" | default dict) -}}
{{- $cluster := dict "id" "cluster" "issuer" .Values.clusterWorkloads.issuer "jwksFile" (printf "%s/%s" (include "gatehouse.clusterJwksDir" .) .Values.clusterWorkloads.jwksKey) "rules" .Values.clusterWorkloads.rules -}}
{{- $_ := set $wi "issuers" (append (get $wi "issuers" | default list) $cluster) -}}
{{- $_ := set $cfg "workloadIdentity" $wi -}}
{{- end -}}
{{- if .Values.metrics.enabled -}}
{{- /* The gateway's own metrics listener, on the port the Service, NetworkPolicy and ServiceMonitor use. */ -}}
{{- $_ := set $cfg "metrics" (dict "enabled" true "listen" (dict "host" .Values.listenHost "port" (int .Values.metrics.port)) "path" .Values.metrics.path) -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end }}

{{/*
The settings of the rendered configuration that a running gateway applies only after a restart
(RESTART_ONLY in src/config/restart-only.ts; a deploy test keeps the two lists equal). Their
checksum rolls the pods; every other change of config is reloaded live by the pods.
*/}}
{{- define "gatehouse.restartOnlyConfig" -}}
{{- $cfg := fromYaml (include "gatehouse.config" .) -}}
{{- toYaml (pick $cfg "publicUrl" "issuer" "listen" "log" "store" "keys" "externalIssuer" "accessTokens" "audit" "metrics" "tracing" "shutdown") -}}
{{- end }}

{{/*
Does the chart render its own Secret, and what goes in it.
*/}}
{{- define "gatehouse.secretData" -}}
{{- $data := dict -}}
{{- if not .Values.signingKeys.existingSecret -}}
{{- range $name, $text := .Values.signingKeys.files -}}
{{- $_ := set $data $name $text -}}
{{- end -}}
{{- end -}}
{{- range $name, $value := .Values.secretEnv.values -}}
{{- $_ := set $data $name (toString $value) -}}
{{- end -}}
{{- if eq .Values.store.type "redis" -}}
{{- if .Values.redis.enabled -}}
{{- $_ := set $data "REDIS_PASSWORD" (include "gatehouse.redis.password" .) -}}
{{- else if .Values.store.redis.password -}}
{{- $_ := set $data "REDIS_PASSWORD" .Values.store.redis.password -}}
{{- end -}}
{{- end -}}
{{- if $data -}}{{ toJson $data }}{{- end -}}
{{- end }}
