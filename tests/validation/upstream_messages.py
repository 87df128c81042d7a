"""Upstream's messages (Dynatrace Operator v1.4.0), transcribed verbatim from its validation packages.

Kept apart from the implementation's constants, so that a test compares the webhook's text with these.
"""

from __future__ import annotations

E1 = "CSI Driver was disabled during Operator install. It is a necessary resource for Cloud Native Fullstack to work. Redeploy the Operator via Helm with the CSI Driver enabled."
MODULE = "<M> has been disabled during Operator install. The necessary resources for <M> to work are not present on the cluster. Redeploy the Operator via Helm with all the necessary resources enabled."
E7 = "The OneAgent's version is only valid in the format 'major.minor.patch.timestamp', e.g. 1.0.0.20240101-000000"
E8 = "The DynaKube's specification is missing the API URL or still has the example value set.\n\tMake sure you correctly specify the URL in your custom resource.\n\t"
E9 = "The DynaKube's specification has an invalid API URL value set.\n\tMake sure you correctly specify the URL in your custom resource (including the /api postfix).\n\t"
E10 = "The DynaKube's specification has an 3rd gen API URL. Make sure to remove the 'apps' part\n\tout of it. Example: https://ENVIRONMENTID.live.dynatrace.com/api"
E11 = "The Dynakube's specification specifies readonly-CSI volume, but the CSI driver is not enabled.\n"
E12 = "The DynaKube's specification tries to use an invalid capability in ActiveGate section, invalid capability=%s.\nMake sure you correctly specify the ActiveGate capabilities in your custom resource.\n"
E13 = "The DynaKube's specification tries to specify duplicate capabilities in the ActiveGate section, duplicate capability=%s.\nMake sure you don't duplicate an Activegate capability in your custom resource.\n"
M14a = "The DynaKube's specification has an invalid Proxy URL value set. Make sure you correctly specify the URL in your custom resource or in the provided secret."
M14b = "The DynaKube's specification has an invalid Proxy password value set. Make sure you don't use forbidden characters: space, apostrophe, backtick, comma, ampersand, equals sign, plus sign, percent sign, backslash."
M14c = "Error occurred while reading PROXY secret indicated in the Dynakube specification"
E15 = "The DynaKube specification attempts to use multiple OneAgent modes simultaneously, which is not supported."
M16 = "The Dynakube specification conflicts with another Dynakube's OneAgent or Standalone-LogMonitoring. Only one Agent per node is supported.\nUse a nodeSelector to avoid this conflict. Conflicting DynaKubes: %s"
M17 = "The DynaKube's specification tries to inject into namespaces where another Dynakube already injects into, which is not supported.\nMake sure the namespaceSelector doesn't conflict with other Dynakubes namespaceSelector"
M18a = "No resources for istio available"
M18b = "Failed to initialize istio client"
E19 = "The DynaKube specification attempts to enable ApplicationMonitoring mode and retrieve the respective image, but the CSI driver is not enabled."
E20 = "The DynaKube specification specifies a read-only host file system while OneAgent has volume storage enabled."
E21 = "The DynaKube's specification violates DNS-1035.\n    [a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')]\n\t"
E22 = "The length limit for the name of a DynaKube is %d, because it is the base for the name of resources related to the DynaKube. (example: dkName-activegate-<some-hash>)\n\tThe limit is necessary because kubernetes uses the name of some resources (example: StatefulSet) for the label value, which has a limit of 63 characters. (see https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set)"
M23 = "The DynaKube's namespaceSelector contains matchLabels that are not conform to spec."
M24a = "Custom %s image must not reference the Dynatrace Environment directly."
M24b = "Custom %s image can't be parsed, make sure it's a valid image reference."
E25 = "DynaKube's specification enables the Prometheus feature, make sure you correctly specify the ExtensionExecutionController image."
E26 = "DynaKube specifies a PVC for the extension controller while ephemeral volume is also enabled. These settings are mutually exclusive, please choose only one."
E27 = "The Dynakube's specification specifies KSPM, but has more than one ActiveGate replica. Only one ActiveGate replica is allowed in combination with KSPM."
E28 = 'The Dynakube\'s specification specifies KSPM, but "kubernetes-monitoring" is not enabled on the Activegate.'
E29 = "The Dynakube's specification specifies KSPM, but no image repository/tag is configured."
E30 = "The Dynakube's specification specifies standalone Log monitoring, but no image repository/tag is configured."
W1 = "ActiveGate specification missing memory limits. Can cause excess memory usage."
W2 = "The environment variables ONEAGENT_INSTALLER_SCRIPT_URL and ONEAGENT_INSTALLER_TOKEN are only relevant for an unsupported image type. Please ensure you are using a supported image."
W3 = "The DynaKube specification sets the host group using the --set-host-group parameter. Instead, specify the new spec.oneagent.hostGroup field. If both settings are used, the new field takes precedence over the parameter."
M_W4 = "Feature flag %s is deprecated."
W5 = "The Dynakube's `spec.templates.logMonitoring` section is skipped as the `spec.oneagent` section is also configured."
W6 = "You are already using a Dynakube ('%s') that enables extensions. Having multiple Dynakubes with same '.spec.apiUrl' and '.spec.extensions' enabled can have severe side-effects on “sum” and “count” metrics and cause double-billing."
U1 = "The DynaKube's specification mutated the API URL although it is immutable. Please delete the CR and then apply a new one"
C1 = "EdgeConnect has been disabled during Operator install. The necessary resources for EdgeConnect to work are not present on the cluster. Redeploy the Operator via Helm with all the necessary resources enabled."
C2 = "The EdgeConnect's specification has an invalid apiServer value set.\n\tMake sure you correctly specify the apiServer in your custom resource.\n\t"
C3 = "The length limit for the name of a EdgeConnect is %d, because it is the base for the name of resources related to the EdgeConnect.\n\tThe limit is necessary because kubernetes uses the name of some resources for the label value, which has a limit of 63 characters. (see https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set)"
C4 = "hostPatterns is required when using provisioner mode"
C5 = "The EdgeConnect's specification has an invalid serviceAccountName.\n"
C6 = "When enabling Kubernetes automation using provisioner mode is mandatory! Please enable spec.oauth.provisioner and provide a resp. OAuth client configuration."

# v1.10.2, pkg/api/validation/dynakube/paastoken.go, public_registry.go, activegate.go: the warnings that read the
# tokens Secret and the cluster's version
PAAS_TOKEN_IGNORED = "The 'paasToken' token in the spec.tokens secret is deprecated. It will be ignored because the 'apiToken' field in the secret contains a platform token, which will be used for authentication."
PAAS_TOKEN_USED = "The 'paasToken' token in the spec.tokens secret is deprecated. It will be used for authentication because the 'apiToken' field in the secret does not contain a platform token."
PUBLIC_REGISTRY_FLAG_IGNORED = 'The feature flag "feature.dynatrace.com/use-public-registry" is set, but it is ignored because a platform token is in use. The public registry endpoint is used automatically with platform tokens.'
ROLLING_UPDATE_OLD_KUBERNETES = "ActiveGate rollingUpdate setting requires Kubernetes version 1.35 or higher. The current cluster version is below 1.35, so the rollingUpdate setting will be ignored."
