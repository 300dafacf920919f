"""The app's settings: one pydantic-settings model read from app settings / environment.

Loaded lazily and cached by `get_settings()`, so importing `function_app` needs no settings and
opens no connection. Every field here appears in `local.settings.sample.json`, the README's
settings table and the Bicep app settings.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.catalog import APP_ROOT, Catalog, ModelDefaults, load_catalog, single_model_catalog


class AppSettings(BaseSettings):
    """Every setting the function app reads, by its app-setting name."""

    model_config = SettingsConfigDict(
        extra="ignore", populate_by_name=True, frozen=True, env_ignore_empty=True
    )

    # --- Identity and the Azure OpenAI resource -------------------------------------------
    azure_auth_mode: Literal["identity", "local"] = Field(
        "identity",
        alias="AZURE_AUTH_MODE",
        description="identity: DefaultAzureCredential; local: the local simulator",
    )
    azure_client_id: str | None = Field(None, alias="AZURE_CLIENT_ID")
    azure_subscription_id: str = Field(alias="AZURE_SUBSCRIPTION_ID")
    azure_resource_group: str = Field(alias="AZURE_RESOURCE_GROUP")
    aoai_account_name: str = Field(alias="AOAI_ACCOUNT_NAME")
    arm_endpoint: str = Field("https://management.azure.com", alias="ARM_ENDPOINT")
    aoai_endpoint: str = Field(alias="AOAI_ENDPOINT")
    aoai_api_version: str = Field("2024-10-21", alias="AOAI_API_VERSION")
    aoai_api_key: SecretStr | None = Field(None, alias="AOAI_API_KEY")
    azure_ca_bundle: str | None = Field(None, alias="AZURE_CA_BUNDLE")

    # --- The hosted models -------------------------------------------------------------------
    # A TOML file declaring several models and their profiles (see shared/catalog.py), or the
    # single-model settings below, which describe one hosted model named "default".
    hosting_config_file: str | None = Field(None, alias="HOSTING_CONFIG_FILE")
    deployment_name: str = Field("ft-on-demand", alias="DEPLOYMENT_NAME")
    model_name: str | None = Field(None, alias="FINE_TUNED_MODEL")
    model_version: str = Field("1", alias="FINE_TUNED_MODEL_VERSION")
    deployment_sku: Literal["Standard", "GlobalStandard", "DeveloperTier", "ProvisionedManaged"] = (
        Field("Standard", alias="DEPLOYMENT_SKU")
    )
    deployment_capacity: int = Field(10, ge=1, alias="DEPLOYMENT_CAPACITY")
    owner_tag: str = Field("on-demand-hosting", alias="OWNER_TAG")
    # Azure allows 5 fine-tuned deployments per account (quotas doc, 2025-07); a setting in
    # case that changes.
    account_max_fine_tuned_deployments: int = Field(
        5, ge=1, alias="ACCOUNT_MAX_FINE_TUNED_DEPLOYMENTS"
    )

    # --- Storage ----------------------------------------------------------------------------
    storage_connection_string: SecretStr | None = Field(
        None, validation_alias=AliasChoices("DocumentStorage", "DOCUMENT_STORAGE")
    )
    storage_blob_service_uri: str | None = Field(None, alias="DocumentStorage__blobServiceUri")
    storage_queue_service_uri: str | None = Field(None, alias="DocumentStorage__queueServiceUri")
    resume_queue: str = Field("job-resumes", alias="RESUME_QUEUE")
    input_container: str = Field("documents-in", alias="INPUT_CONTAINER")
    output_container: str = Field("documents-out", alias="OUTPUT_CONTAINER")
    ledger_container: str = Field("deployment-ledger", alias="LEDGER_CONTAINER")
    jobs_container: str = Field("jobs", alias="JOBS_CONTAINER")
    # Batch inputs live in their own container, so the blob trigger (INPUT_CONTAINER) never
    # processes them as ad-hoc documents; a run names a prefix inside it.
    batch_container: str = Field("batch-in", alias="BATCH_CONTAINER")
    batch_runs_container: str = Field("batch-runs", alias="BATCH_RUNS_CONTAINER")
    # Evaluations (runs, per-example answers, reports) and each hosted model's promotions.
    evaluations_container: str = Field("evaluations", alias="EVALUATIONS_CONTAINER")
    batch_queue: str = Field("batch-continuations", alias="BATCH_QUEUE")

    # --- Timings (seconds) ------------------------------------------------------------------
    idle_grace_seconds: float = Field(300, ge=0, alias="IDLE_GRACE_SECONDS")
    job_hold_seconds: float = Field(600, gt=0, alias="JOB_HOLD_SECONDS")
    provision_timeout_seconds: float = Field(1200, gt=0, alias="PROVISION_TIMEOUT_SECONDS")
    readiness_timeout_seconds: float = Field(600, gt=0, alias="READINESS_TIMEOUT_SECONDS")
    management_poll_seconds: float = Field(15, gt=0, alias="MANAGEMENT_POLL_SECONDS")
    max_deployment_lifetime_seconds: float = Field(
        14 * 3600, gt=0, alias="MAX_DEPLOYMENT_LIFETIME_SECONDS"
    )
    operation_lease_seconds: float = Field(120, gt=0, alias="OPERATION_LEASE_SECONDS")
    create_attempts: int = Field(3, ge=1, alias="CREATE_ATTEMPTS")
    not_found_retry_seconds: float = Field(60, ge=0, alias="NOT_FOUND_RETRY_SECONDS")
    reaper_schedule: str = Field("0 * * * * *", alias="REAPER_SCHEDULE")
    # NCRONTAB in UTC: how often the schedules' reconciler looks at the clock (windows and
    # batches are evaluated in their own time zones in code, not by the timer).
    schedule_reconcile_schedule: str = Field("0 * * * * *", alias="SCHEDULE_RECONCILE_SCHEDULE")
    job_timeout_seconds: float = Field(1680, gt=0, alias="JOB_TIMEOUT_SECONDS")
    expected_provision_seconds: float = Field(300, gt=0, alias="EXPECTED_PROVISION_SECONDS")
    park_max_seconds: float = Field(300, gt=0, alias="PARK_MAX_SECONDS")
    sweep_grace_seconds: float = Field(60, ge=0, alias="SWEEP_GRACE_SECONDS")
    resume_max_dequeue_count: int = Field(5, ge=1, alias="RESUME_MAX_DEQUEUE_COUNT")
    max_job_attempts: int = Field(5, ge=1, alias="MAX_JOB_ATTEMPTS")

    # --- Inference --------------------------------------------------------------------------
    inference_max_attempts: int = Field(20, ge=1, alias="INFERENCE_MAX_ATTEMPTS")
    inference_max_seconds: float = Field(300, gt=0, alias="INFERENCE_MAX_SECONDS")
    inference_timeout_seconds: float = Field(120, gt=0, alias="INFERENCE_TIMEOUT_SECONDS")
    throttle_park_seconds: float = Field(10, ge=0, alias="THROTTLE_PARK_SECONDS")

    # --- Batches ----------------------------------------------------------------------------
    batch_hold_seconds: float = Field(600, gt=0, alias="BATCH_HOLD_SECONDS")
    # One invocation's share of a batch; keep it well under host.json's functionTimeout.
    batch_slice_seconds: float = Field(600, gt=0, alias="BATCH_SLICE_SECONDS")
    batch_page_size: int = Field(100, ge=1, le=5000, alias="BATCH_PAGE_SIZE")
    batch_concurrency: int = Field(8, ge=1, le=64, alias="BATCH_CONCURRENCY")
    batch_document_attempts: int = Field(3, ge=1, alias="BATCH_DOCUMENT_ATTEMPTS")
    # Azure's rate-limit minute in seconds: 60, except against the faster local simulator.
    rate_limit_minute_seconds: float = Field(60, gt=0, alias="RATE_LIMIT_MINUTE_SECONDS")

    # --- Documents --------------------------------------------------------------------------
    processing_profiles: str | None = Field(None, alias="PROCESSING_PROFILES")
    default_profile: str = Field("default", alias="DEFAULT_PROFILE")
    model_context_tokens: int = Field(128_000, ge=1024, alias="MODEL_CONTEXT_TOKENS")
    max_document_bytes: int = Field(2_000_000, ge=1, alias="MAX_DOCUMENT_BYTES")
    max_chunks: int = Field(40, ge=1, alias="MAX_CHUNKS")
    max_submit_bytes: int = Field(2_500_000, ge=1, alias="MAX_SUBMIT_BYTES")
    tiktoken_encoding: str = Field("o200k_base", alias="TIKTOKEN_ENCODING")

    _catalog: Catalog | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _storage_is_configured(self) -> AppSettings:
        if self.storage_connection_string is None and self.storage_blob_service_uri is None:
            raise ValueError(
                "no storage configured: set DocumentStorage (a connection string) or "
                "DocumentStorage__blobServiceUri (identity-based connection)"
            )
        if self.storage_connection_string is None and self.storage_queue_service_uri is None:
            raise ValueError(
                "an identity-based DocumentStorage connection needs "
                "DocumentStorage__queueServiceUri too (the resume queue lives there)"
            )
        return self

    @model_validator(mode="after")
    def _hosted_models_are_declared(self) -> AppSettings:
        # Built here so a bad declaration fails at load time with every problem listed.
        self._catalog = self._load_catalog()
        return self

    @property
    def catalog(self) -> Catalog:
        """The hosted models and the profiles that route to them."""
        assert self._catalog is not None, "set by the validator"
        return self._catalog

    def _load_catalog(self) -> Catalog:
        defaults = ModelDefaults(
            idle_grace_seconds=self.idle_grace_seconds,
            max_lifetime_seconds=self.max_deployment_lifetime_seconds,
            context_tokens=self.model_context_tokens,
        )
        if self.hosting_config_file is not None:
            if self.model_name is not None:
                raise ValueError(
                    "both HOSTING_CONFIG_FILE and FINE_TUNED_MODEL are set: the file declares "
                    "the hosted models, so remove FINE_TUNED_MODEL (and the other single-model "
                    "settings), or remove HOSTING_CONFIG_FILE to host that one model"
                )
            path = Path(self.hosting_config_file)
            return load_catalog(
                path if path.is_absolute() else APP_ROOT / path,
                defaults,
                profiles_json=self.processing_profiles,
            )
        if self.model_name is None:
            raise ValueError(
                "no hosted model declared: set HOSTING_CONFIG_FILE to a TOML file declaring "
                "the models (see the README), or FINE_TUNED_MODEL for a single model"
            )
        return single_model_catalog(
            deployment=self.deployment_name,
            fine_tuned_model=self.model_name,
            version=self.model_version,
            deployment_type=self.deployment_sku,
            capacity=self.deployment_capacity,
            defaults=defaults,
            profiles_json=self.processing_profiles,
        )


@lru_cache(maxsize=1)
def get_settings() -> AppSettings:
    """The app's settings, read once from the environment on first use."""
    return AppSettings()
