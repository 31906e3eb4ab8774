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
{{/* Where the AKS workload identity webhook mounts the federated token (it also sets AZURE_FEDERATED_TOKEN_FILE to it). */}}
{{- define "token-broker.azureIdentityTokenFile" -}}/var/run/secrets/azure/tokens/azure-identity-token{{- end -}}
{{/* The audience Entra ID expects in a federated token (a federated credential has exactly this one by default). */}}
{{- define "token-broker.entraTokenExchangeAudience" -}}api://AzureADTokenExchange{{- end -}}

{{/*
Volume name of a credential's material (certificate or client-secret Secret, projected token):
cred-<index> (ids may hold dots and underscores). A credential has exactly one of them.
*/}}
{{- define "token-broker.credentialVolume" -}}
{{- printf "cred-%d" . -}}
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

{{/* Whether the metrics port is served separately. */}}
{{- define "token-broker.metricsPortName" -}}
{{- if .Values.metrics.enabled -}}metrics{{- else -}}http{{- end -}}
{{- end -}}

{{/*
The broker's config file (src/config/schema.ts) built from .Values.config. How a credential
authenticates (exactly one of certificate, clientSecret, federatedToken; docs/design.md §9.1):
- certificate or clientSecret given as an existingSecret reference becomes the file paths where
  the Secret is mounted (certFile/keyFile/pfxFile/passphraseFile; file/previousFile);
- federatedToken.projected becomes the path of the projected service-account token the chart
  mounts, federatedToken.azureWorkloadIdentity the path where the AKS webhook mounts its token;
- file paths (e.g. from a CSI volume in extraVolumes) are passed through.
jwt callers get callerTokens.audience when they name none.
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
{{- $_ := set $files "keyFile" (printf "%s/%s" $dir (default "tls.key" $certificate.keyKey)) -}}
{{- end -}}
{{- if $certificate.passphraseKey -}}
{{- $_ := set $files "passphraseFile" (printf "%s/%s" $dir $certificate.passphraseKey) -}}
{{- end -}}
{{- $credential = set (omit $credential "certificate") "certificate" $files -}}
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
{{- if .Values.redis.caSecret -}}
{{- $_ := set $cache "tlsCaFile" (printf "%s/%s" (include "token-broker.redisCaDir" .) .Values.redis.caKey) -}}
{{- end -}}
{{- $_ := set $config "cache" $cache -}}
{{- if .Values.metrics.enabled -}}
{{- $_ := set $config "metrics" (dict "port" (int .Values.metrics.port)) -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}
