{{/* Names, labels and the broker config. */}}

{{- define "token-broker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "token-broker.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "token-broker.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "token-broker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "token-broker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "token-broker.labels" -}}
helm.sh/chart: {{ include "token-broker.chart" . }}
{{ include "token-broker.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: token-broker
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "token-broker.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "token-broker.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "token-broker.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Where the chart mounts things inside the container. */}}
{{- define "token-broker.configDir" -}}/etc/token-broker/config{{- end -}}
{{- define "token-broker.credentialsDir" -}}/etc/token-broker/credentials{{- end -}}
{{- define "token-broker.cacheKeyDir" -}}/etc/token-broker/cache-key{{- end -}}
{{- define "token-broker.redisCaDir" -}}/etc/token-broker/redis-ca{{- end -}}
{{- define "token-broker.redisPasswordDir" -}}/etc/token-broker/redis-password{{- end -}}
{{- define "token-broker.redisSentinelPasswordDir" -}}/etc/token-broker/redis-sentinel-password{{- end -}}
{{/* A credential's HSM PIN and Key Vault CA, each at <dir>/<id> (Secrets of their own, beside the certificate's). */}}
{{- define "token-broker.hsmPinDir" -}}/etc/token-broker/hsm-pin{{- end -}}
{{- define "token-broker.keyVaultCaDir" -}}/etc/token-broker/key-vault-ca{{- end -}}
{{/* Where the AKS workload identity webhook mounts the federated token (it also sets AZURE_FEDERATED_TOKEN_FILE to it). */}}
{{- define "token-broker.azureIdentityTokenFile" -}}/var/run/secrets/azure/tokens/azure-identity-token{{- end -}}
{{/* The audience Entra ID expects in a federated token (a federated credential has exactly this one by default). */}}
{{- define "token-broker.entraTokenExchangeAudience" -}}api://AzureADTokenExchange{{- end -}}

{{/*
Volume name of a credential's material (certificate or client-secret Secret, projected token):
cred-<index> (ids may hold dots and underscores). A credential has exactly one of them, and besides
it cred-<index>-pin (an HSM PIN) or cred-<index>-ca (a Key Vault CA).
*/}}
{{- define "token-broker.credentialVolume" -}}
{{- printf "cred-%d" . -}}
{{- end -}}

{{/* Whether a certificate's private key is in an HSM or in Key Vault: then it has no key file. */}}
{{- define "token-broker.keyElsewhere" -}}
{{- $c := . | default dict -}}
{{- if or $c.pkcs11 $c.keyVault -}}true{{- end -}}
{{- end -}}

{{/* Whether the chart mounts something for this credential (at credentialsDir/<id>). */}}
{{- define "token-broker.mountsCredential" -}}
{{- $c := . -}}
{{- if or (and $c.certificate $c.certificate.existingSecret) (and $c.clientSecret $c.clientSecret.existingSecret) (hasKey ($c.federatedToken | default dict) "projected") -}}true{{- end -}}
{{- end -}}

{{/* The clientId of the first credential that uses AKS workload identity, or nothing. */}}
{{- define "token-broker.azureWorkloadIdentityClientId" -}}
{{- $found := "" -}}
{{- range .Values.config.credentials -}}
{{- if and (not $found) .federatedToken .federatedToken.azureWorkloadIdentity -}}
{{- $found = .clientId -}}
{{- end -}}
{{- end -}}
{{- $found -}}
{{- end -}}

{{/*
Whether the pod needs the AKS workload identity webhook: a federated token from it, or a Key Vault
key reached with authentication: workloadIdentity. The latter signs in as the identity the service
account names (azure.workload.identity/client-id, which the webhook turns into AZURE_CLIENT_ID): a
chart-made service account without one, and no credential to take it from, fails the render.
*/}}
{{- define "token-broker.usesAzureWorkloadIdentity" -}}
{{- $uses := include "token-broker.azureWorkloadIdentityClientId" . -}}
{{- range $i, $c := .Values.config.credentials -}}
{{- $keyVault := ($c.certificate | default dict).keyVault | default dict -}}
{{- if eq (toString $keyVault.authentication) "workloadIdentity" -}}
{{- $annotations := $.Values.serviceAccount.annotations | default dict -}}
{{- if and $.Values.serviceAccount.create (not $uses) (not (get $annotations "azure.workload.identity/client-id")) -}}
{{- fail (printf "config.credentials[%d].certificate.keyVault.authentication: workloadIdentity signs in to Key Vault as the identity of the service account: set serviceAccount.annotations.azure.workload.identity/client-id to the client id of the identity that has Key Vault Crypto User on the vault" $i) -}}
{{- end -}}
{{- $uses = "true" -}}
{{- end -}}
{{- end -}}
{{- if $uses -}}true{{- end -}}
{{- end -}}

{{/*
The shared cache's Redis topology: standalone (redis.existingSecret, the URL in env REDIS_URL),
cluster (redis.cluster.nodes or a passed-through config.cache.redisCluster), sentinel
(redis.sentinel.sentinels or config.cache.redisSentinel), or nothing: the in-memory cache. Values
the broker would refuse, or that the chart would silently drop, fail the render here, so they show
at helm install rather than in a crash-looping pod.
*/}}
{{- define "token-broker.redisTopology" -}}
{{- $redis := .Values.redis -}}
{{- $cache := .Values.config.cache | default dict -}}
{{- $cluster := $redis.cluster | default dict -}}
{{- $sentinel := $redis.sentinel | default dict -}}
{{- $clusterTls := $cluster.tls | default dict -}}
{{- $sentinelTls := $sentinel.tls | default dict -}}
{{- $found := list -}}
{{- if $redis.existingSecret -}}{{- $found = append $found "redis.existingSecret" -}}{{- end -}}
{{- if $cluster.nodes -}}{{- $found = append $found "redis.cluster.nodes" -}}{{- end -}}
{{- if $cache.redisCluster -}}{{- $found = append $found "config.cache.redisCluster" -}}{{- end -}}
{{- if $sentinel.sentinels -}}{{- $found = append $found "redis.sentinel.sentinels" -}}{{- end -}}
{{- if $cache.redisSentinel -}}{{- $found = append $found "config.cache.redisSentinel" -}}{{- end -}}
{{- if gt (len $found) 1 -}}
{{- fail (printf "redis: set exactly one of redis.existingSecret (standalone), redis.cluster.nodes (cluster) and redis.sentinel.sentinels (sentinel); found %s" (join " and " $found)) -}}
{{- end -}}
{{- if and (not $cluster.nodes) (or $cluster.username $clusterTls.enabled $clusterTls.serverName) -}}
{{- fail "redis.cluster: username and tls apply to redis.cluster.nodes, which is empty" -}}
{{- end -}}
{{- if and (not $sentinel.sentinels) (or $sentinel.masterName $sentinel.username $sentinelTls.enabled $sentinelTls.serverName) -}}
{{- fail "redis.sentinel: masterName, username and tls apply to redis.sentinel.sentinels, which is empty" -}}
{{- end -}}
{{- if and $sentinel.sentinels (not $sentinel.masterName) -}}
{{- fail "redis.sentinel.masterName: required with redis.sentinel.sentinels (the name the sentinels monitor the master under, in sentinel.conf)" -}}
{{- end -}}
{{- $topology := "" -}}
{{- if $redis.existingSecret -}}{{- $topology = "standalone" -}}
{{- else if or $cluster.nodes $cache.redisCluster -}}{{- $topology = "cluster" -}}
{{- else if or $sentinel.sentinels $cache.redisSentinel -}}{{- $topology = "sentinel" -}}
{{- end -}}
{{- if and $redis.passwordSecret (not (has $topology (list "cluster" "sentinel"))) -}}
{{- fail "redis.passwordSecret: for redis.cluster or redis.sentinel; a standalone server's password is part of its URL (redis.existingSecret)" -}}
{{- end -}}
{{- if and $redis.sentinelPasswordSecret (ne $topology "sentinel") -}}
{{- fail "redis.sentinelPasswordSecret: for redis.sentinel only" -}}
{{- end -}}
{{- if and $redis.caSecret (not $topology) -}}
{{- fail "redis.caSecret: no Redis is configured (redis.existingSecret, redis.cluster.nodes or redis.sentinel.sentinels)" -}}
{{- end -}}
{{- $topology -}}
{{- end -}}

{{/*
Sets cache.redisCluster or cache.redisSentinel in .cache (the config being built) from .root's
values: the topology from redis.cluster / redis.sentinel, or the config.cache block as written;
then the chart's own file paths for the Secrets it mounts: passwordFile, sentinelPasswordFile and
tls.caFile. A passed-through block that already names one of these files conflicts with the Secret.
*/}}
{{- define "token-broker.redisTopologySection" -}}
{{- $redis := .root.Values.redis -}}
{{- $name := .topology -}}
{{- $isCluster := eq $name "cluster" -}}
{{- $field := ternary "redisCluster" "redisSentinel" $isCluster -}}
{{- $list := ternary "nodes" "sentinels" $isCluster -}}
{{- $values := index $redis $name | default dict -}}
{{- $tlsValues := $values.tls | default dict -}}
{{- $section := index .cache $field | default dict -}}
{{- if index $values $list -}}
{{- $section = dict $list (index $values $list) -}}
{{- with $values.masterName -}}{{- $_ := set $section "masterName" . -}}{{- end -}}
{{- with $values.username -}}{{- $_ := set $section "username" . -}}{{- end -}}
{{- if $tlsValues.enabled -}}
{{- $_ := set $section "tls" (dict) -}}
{{- with $tlsValues.serverName -}}{{- $_ := set $section.tls "serverName" . -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- /* The broker also turns TLS on for a cluster when a seed node is rediss://. */ -}}
{{- $tlsOn := hasKey $section "tls" -}}
{{- if $isCluster -}}
{{- range (index $section "nodes" | default list) -}}
{{- if hasPrefix "rediss://" . -}}{{- $tlsOn = true -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- $where := ternary "redis.cluster.tls.serverName" "redis.sentinel.tls.serverName" $isCluster -}}
{{- if and $tlsValues.serverName (not $tlsOn) -}}
{{- fail (printf "%s: TLS is off (set redis.%s.tls.enabled)" $where $name) -}}
{{- end -}}
{{- if $redis.passwordSecret -}}
{{- if hasKey $section "passwordFile" -}}
{{- fail (printf "config.cache.%s.passwordFile: the password comes from redis.passwordSecret; set only one" $field) -}}
{{- end -}}
{{- $_ := set $section "passwordFile" (printf "%s/%s" (include "token-broker.redisPasswordDir" .root) $redis.passwordKey) -}}
{{- end -}}
{{- if and $redis.sentinelPasswordSecret (not $isCluster) -}}
{{- if hasKey $section "sentinelPasswordFile" -}}
{{- fail "config.cache.redisSentinel.sentinelPasswordFile: the password comes from redis.sentinelPasswordSecret; set only one" -}}
{{- end -}}
{{- $_ := set $section "sentinelPasswordFile" (printf "%s/%s" (include "token-broker.redisSentinelPasswordDir" .root) $redis.sentinelPasswordKey) -}}
{{- end -}}
{{- if $redis.caSecret -}}
{{- if not $tlsOn -}}
{{- fail (printf "redis.caSecret: a CA for TLS, but TLS to the %s is off (set redis.%s.tls.enabled)" (ternary "cluster" "sentinels" $isCluster) $name) -}}
{{- end -}}
{{- $tls := index $section "tls" | default dict -}}
{{- if hasKey $tls "caFile" -}}
{{- fail (printf "config.cache.%s.tls.caFile: the CA comes from redis.caSecret; set only one" $field) -}}
{{- end -}}
{{- $_ := set $tls "caFile" (printf "%s/%s" (include "token-broker.redisCaDir" .root) $redis.caKey) -}}
{{- $_ := set $section "tls" $tls -}}
{{- end -}}
{{- $_ := set .cache $field $section -}}
{{- end -}}

{{/* Whether the metrics port is served separately. */}}
{{- define "token-broker.metricsPortName" -}}
{{- if .Values.metrics.enabled -}}metrics{{- else -}}http{{- end -}}
{{- end -}}

{{/*
The broker's config file (src/config/schema.ts) built from .Values.config. How a credential
authenticates (exactly one of certificate, clientSecret, federatedToken; docs/design.md §9.1):
- certificate or clientSecret given as an existingSecret reference becomes the file paths where
  the Secret is mounted (certFile/keyFile/pfxFile/passphraseFile; file/previousFile); with the key
  in an HSM (certificate.pkcs11) or in Key Vault (certificate.keyVault) the Secret holds the
  certificate alone: certFile, never keyFile;
- certificate.pkcs11.pinSecret and certificate.keyVault.caSecret become pinFile and caFile, where
  those Secrets are mounted (hsmPinDir/<id>, keyVaultCaDir/<id>); the pkcs11 module is a path in
  the image or in a volume of extraVolumes, passed through;
- federatedToken.projected becomes the path of the projected service-account token the chart
  mounts, federatedToken.azureWorkloadIdentity the path where the AKS webhook mounts its token;
- file paths (e.g. from a CSI volume in extraVolumes) are passed through.
jwt callers get callerTokens.audience when they name none. The cache gets its Redis topology
(redisTopologySection) and the paths of the key and CA files the chart mounts.
*/}}
{{- define "token-broker.brokerConfig" -}}
{{- $config := deepCopy .Values.config -}}
{{- if not $config.credentials -}}
{{- fail "config.credentials: at least one credential is required (see the chart README)" -}}
{{- end -}}
{{- $credentials := list -}}
{{- range $i, $credential := $config.credentials -}}
{{- $certificate := $credential.certificate | default dict -}}
{{- if $certificate.existingSecret -}}
{{- $dir := printf "%s/%s" (include "token-broker.credentialsDir" $) $credential.id -}}
{{- $files := dict -}}
{{- if $certificate.pfxKey -}}
{{- $_ := set $files "pfxFile" (printf "%s/%s" $dir $certificate.pfxKey) -}}
{{- else -}}
{{- $_ := set $files "certFile" (printf "%s/%s" $dir (default "tls.crt" $certificate.certKey)) -}}
{{- if not (include "token-broker.keyElsewhere" $certificate) -}}
{{- $_ := set $files "keyFile" (printf "%s/%s" $dir (default "tls.key" $certificate.keyKey)) -}}
{{- end -}}
{{- end -}}
{{- if $certificate.passphraseKey -}}
{{- $_ := set $files "passphraseFile" (printf "%s/%s" $dir $certificate.passphraseKey) -}}
{{- end -}}
{{- with $certificate.pkcs11 -}}{{- $_ := set $files "pkcs11" . -}}{{- end -}}
{{- with $certificate.keyVault -}}{{- $_ := set $files "keyVault" . -}}{{- end -}}
{{- $certificate = $files -}}
{{- end -}}
{{- if $certificate.pkcs11 -}}
{{- $pkcs11 := omit $certificate.pkcs11 "pinSecret" -}}
{{- with $certificate.pkcs11.pinSecret -}}
{{- $_ := set $pkcs11 "pinFile" (printf "%s/%s/%s" (include "token-broker.hsmPinDir" $) $credential.id (default "pin" .key)) -}}
{{- end -}}
{{- $certificate = set (omit $certificate "pkcs11") "pkcs11" $pkcs11 -}}
{{- end -}}
{{- if $certificate.keyVault -}}
{{- $keyVault := omit $certificate.keyVault "caSecret" -}}
{{- with $certificate.keyVault.caSecret -}}
{{- $_ := set $keyVault "caFile" (printf "%s/%s/%s" (include "token-broker.keyVaultCaDir" $) $credential.id (default "ca.crt" .key)) -}}
{{- end -}}
{{- $certificate = set (omit $certificate "keyVault") "keyVault" $keyVault -}}
{{- end -}}
{{- if $credential.certificate -}}
{{- $credential = set (omit $credential "certificate") "certificate" $certificate -}}
{{- end -}}
{{- $clientSecret := $credential.clientSecret | default dict -}}
{{- if $clientSecret.existingSecret -}}
{{- $dir := printf "%s/%s" (include "token-broker.credentialsDir" $) $credential.id -}}
{{- $key := default "client-secret" $clientSecret.key -}}
{{- $files := dict "file" (printf "%s/%s" $dir $key) -}}
{{- with $clientSecret.previousKey -}}
{{- if eq . $key -}}
{{- fail (printf "config.credentials[%d].clientSecret.previousKey: must differ from key (%s)" $i $key) -}}
{{- end -}}
{{- $_ := set $files "previousFile" (printf "%s/%s" $dir .) -}}
{{- end -}}
{{- with $clientSecret.method -}}
{{- $_ := set $files "method" . -}}
{{- end -}}
{{- $credential = set (omit $credential "clientSecret") "clientSecret" $files -}}
{{- end -}}
{{- $federated := $credential.federatedToken | default dict -}}
{{- if $federated.azureWorkloadIdentity -}}
{{- $credential = set (omit $credential "federatedToken") "federatedToken" (dict "file" (include "token-broker.azureIdentityTokenFile" $)) -}}
{{- else if hasKey $federated "projected" -}}
{{- $credential = set (omit $credential "federatedToken") "federatedToken" (dict "file" (printf "%s/%s/token" (include "token-broker.credentialsDir" $) $credential.id)) -}}
{{- end -}}
{{- $credentials = append $credentials $credential -}}
{{- end -}}
{{- $_ := set $config "credentials" $credentials -}}
{{- $callers := list -}}
{{- range $caller := ($config.callers | default list) -}}
{{- if and $caller.jwt (not $caller.jwt.audience) -}}
{{- $_ := set $caller.jwt "audience" $.Values.callerTokens.audience -}}
{{- end -}}
{{- $callers = append $callers $caller -}}
{{- end -}}
{{- $_ := set $config "callers" $callers -}}
{{- $cache := $config.cache | default dict -}}
{{- if .Values.cacheEncryption.existingSecret -}}
{{- $_ := set $cache "encryptionKeyFile" (printf "%s/%s" (include "token-broker.cacheKeyDir" .) .Values.cacheEncryption.key) -}}
{{- end -}}
{{- $topology := include "token-broker.redisTopology" . -}}
{{- if and (eq $topology "standalone") .Values.redis.caSecret -}}
{{- $_ := set $cache "tlsCaFile" (printf "%s/%s" (include "token-broker.redisCaDir" .) .Values.redis.caKey) -}}
{{- else if has $topology (list "cluster" "sentinel") -}}
{{- include "token-broker.redisTopologySection" (dict "root" . "cache" $cache "topology" $topology) -}}
{{- end -}}
{{- $_ := set $config "cache" $cache -}}
{{- if .Values.metrics.enabled -}}
{{- $_ := set $config "metrics" (dict "port" (int .Values.metrics.port)) -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}
