"""The DynaKube checks of Dynatrace Operator v1.10.2 in upstream's order (``validation.go``
``validatorErrorFuncs``, ``validatorWarningFuncs``, ``updateValidatorErrorFuncs`` at tag v1.10.2), for
DynaKube v1beta4, v1beta5 and v1beta6 read as v1beta6 (``latest.to_latest``).

What upstream reads from the API on the request path comes from the cache here: the tokens Secret's key names
and whether its API token is a platform token (``Context.tokens``), and the cluster's minor version, read at
start and every 5 minutes (``Context.kubernetes_minor``).
"""

from __future__ import annotations

from webhook.validation import (
    activegate,
    apiurl,
    istio,
    kspm,
    logmonitoring,
    module_checks,
    namespaces,
    oneagent,
    proxy,
    v110,
    v110_more,
    v110_warnings,
)
from webhook.validation.base import Check

ERROR_CHECKS: tuple[Check, ...] = (
    v110.activegate_module_disabled,
    v110.extensions_module_disabled,
    module_checks.log_monitoring_module_disabled,
    v110.kspm_module_disabled,
    module_checks.oneagent_module_disabled,
    oneagent.invalid_oneagent_version,
    v110.duplicate_oneagent_arguments,
    v110.host_id_source_argument,
    apiurl.no_api_url,
    v110.invalid_api_url,
    activegate.invalid_capability,
    v110.activegate_pvc_with_ephemeral_volume,
    proxy.invalid_proxy,
    oneagent.conflicting_oneagent_modes,
    oneagent.conflicting_node_selector,
    v110.conflicting_namespace_selector,
    istio.istio_unavailable,
    oneagent.conflicting_volume_storage,
    v110.name_invalid,
    namespaces.invalid_namespace_selector,
    v110.unparsable_image,
    v110.eec_image_missing,
    v110.eec_pvc_with_ephemeral_volume,
    kspm.too_many_activegate_replicas,
    kspm.missing_node_collector_image,
    v110.kspm_without_kubernetes_monitoring,
    v110.kspm_root_with_other_paths,
    v110.kspm_relative_path,
    v110.missing_log_monitoring_image,
    v110_more.telemetry_no_protocols,
    v110_more.telemetry_unknown_protocols,
    v110_more.telemetry_name_not_dns1035,
    v110_more.telemetry_forbidden_suffix,
    v110_more.telemetry_service_name_in_use,
    v110_more.missing_otel_collector_image,
    v110_more.missing_database_executor_image,
    v110_more.database_volume_mounts,
    v110_more.unused_database_volumes,
    v110_more.invalid_global_attributes,
    v110_more.invalid_oneagent_attributes,
    v110_more.invalid_otlp_attributes,
    v110_more.invalid_global_attribute_keys,
    v110_more.invalid_oneagent_attribute_keys,
    v110_more.invalid_otlp_attribute_keys,
    v110.override_without_public_registry,
    v110.invalid_network_zone,
    v110.invalid_host_group,
    v110.invalid_no_proxy,
    v110.classic_with_public_registry,
    v110.invalid_oneagent_arguments,
    v110.invalid_logmon_arguments,
    v110.missing_code_modules_image,
)
WARNING_CHECKS: tuple[Check, ...] = (
    v110_warnings.missing_memory_limit,
    oneagent.installer_variables,
    v110_warnings.host_group_argument,
    v110_warnings.max_unavailable_with_rolling_update,
    v110_warnings.deprecated_auto_update,
    v110_warnings.deprecated_version_field,
    v110_warnings.deprecated_feature_flags,
    v110_warnings.unknown_feature_flags,
    v110_warnings.ignored_otel_template,
    logmonitoring.ignored_log_monitoring_template,
    v110_warnings.same_api_url_for_extensions,
    v110_warnings.no_mapped_host_paths,
    v110_warnings.extensions_without_kubernetes_monitoring,
    v110_more.host_path_database_volume,
    v110_warnings.enrichment_disabled_for_injection,
    v110_warnings.rolling_update_with_old_kubernetes,
    v110_more.too_many_global_attributes,
    v110_more.too_many_oneagent_attributes,
    v110_more.too_many_otlp_attributes,
    v110_warnings.deprecated_paas_token,
    v110_warnings.public_registry_flag_ignored,
    v110_warnings.node_image_pull_without_csi,
    v110_more.renamed_global_attribute_keys,
    v110_more.renamed_oneagent_attribute_keys,
    v110_more.renamed_otlp_attribute_keys,
)
# ours, not in v1.10.2: warnings only, after upstream's
EXTRA_WARNING_CHECKS: tuple[Check, ...] = (namespaces.invalid_enrichment_selector,)
UPDATE_CHECKS: tuple[Check, ...] = (v110.mutated_tenant,)
