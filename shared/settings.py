"""The app's settings: one pydantic-settings model read from app settings / environment.

Loaded lazily and cached by `get_settings()`, so importing `function_app` needs no settings and
opens no connection. Every field here appears in `local.settings.sample.json`, the README's
settings table and the Bicep app settings.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.batch.locations import container_overlaps
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
    # Batch outcomes have their own container: ad-hoc outcomes are named after their input
    # blob, any name, so no prefix of OUTPUT_CONTAINER is safe from them (batch/locations.py).
    batch_output_container: str = Field("batch-out", alias="BATCH_OUTPUT_CONTAINER")
    batch_runs_container: str = Field("batch-runs", alias="BATCH_RUNS_CONTAINER")
    # Evaluations (runs, per-example answers, reports) and each hosted model's promotions.
    evaluations_container: str = Field("evaluations", alias="EVALUATIONS_CONTAINER")
    batch_queue: str = Field("batch-continuations", alias="BATCH_QUEUE")
    # The hosting log: one append blob per model and UTC day (shared/cost/log.py).
    hosting_log_container: str = Field("hosting-log", alias="HOSTING_LOG_CONTAINER")

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
    # The intake sweep (on REAPER_SCHEDULE): an input blob with no job this long after its
    # upload lost its event, and is processed by the sweep.
    intake_grace_seconds: float = Field(600, ge=0, alias="INTAKE_GRACE_SECONDS")
    intake_sweep_page_size: int = Field(1000, ge=1, le=5000, alias="INTAKE_SWEEP_PAGE_SIZE")
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

    # --- Cost report ------------------------------------------------------------------------
    # Azure seconds per second of the app's clock: 1 in Azure. Against the local simulator,
    # whose time runs faster, its time scale, so a local run's report reads as Azure would
    # bill the same run (its billing meter counts simulated time).
    cost_time_scale: float = Field(1.0, gt=0, alias="COST_TIME_SCALE")

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
        problem = _storage_problem(
            connection=self.storage_connection_string is not None,
            blob_uri=self.storage_blob_service_uri is not None,
            queue_uri=self.storage_queue_service_uri is not None,
        )
        if problem:
            raise PydanticCustomError("settings", problem)
        return self

    @model_validator(mode="after")
    def _output_locations_are_apart(self) -> AppSettings:
        problems = container_overlaps(
            {
                "INPUT_CONTAINER": self.input_container,
                "OUTPUT_CONTAINER": self.output_container,
                "BATCH_CONTAINER": self.batch_container,
                "BATCH_OUTPUT_CONTAINER": self.batch_output_container,
            }
        )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _hosted_models_are_declared(self) -> AppSettings:
        # Built here so a bad declaration fails at load time with every problem listed.
        self._catalog = self._load_catalog()
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _every_problem_at_once(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        # Defined after the other validators so that it wraps them all. pydantic stops at the
        # first failing stage (fields, then each model validator in turn), which would report
        # missing names, then storage, then the hosted models, one round at a time. The
        # declaration problems are found from the raw values instead, so one attempt lists all.
        try:
            return handler(data)
        except ValidationError as error:
            if not isinstance(data, dict):
                raise
            found = error.errors()
            said = {detail["msg"] for detail in found}
            extra = [problem for problem in declaration_problems(data) if problem not in said]
            if not extra:
                raise
            details: list[InitErrorDetails] = [_again(detail) for detail in found]
            details += [
                InitErrorDetails(type=PydanticCustomError("settings", problem), loc=(), input=data)
                for problem in extra
            ]
            raise ValidationError.from_exception_data(cls.__name__, details) from None

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
        problem = _hosted_models_problem(
            config_file=self.hosting_config_file is not None, model=self.model_name is not None
        )
        if problem:
            raise PydanticCustomError("settings", problem)
        if self.hosting_config_file is not None:
            path = Path(self.hosting_config_file)
            return load_catalog(
                path if path.is_absolute() else APP_ROOT / path,
                defaults,
                profiles_json=self.processing_profiles,
            )
        assert self.model_name is not None, "checked above"
        return single_model_catalog(
            deployment=self.deployment_name,
            fine_tuned_model=self.model_name,
            version=self.model_version,
            deployment_type=self.deployment_sku,
            capacity=self.deployment_capacity,
            defaults=defaults,
            profiles_json=self.processing_profiles,
        )


def declaration_problems(values: dict[str, Any]) -> list[str]:
    """What is wrong with how storage and the hosted models are declared, from raw values."""
    present = {key.lower() for key, value in values.items() if value not in (None, "")}
    problems = [
        _storage_problem(
            connection=bool(present & {"documentstorage", "document_storage"}),
            blob_uri="documentstorage__blobserviceuri" in present,
            queue_uri="documentstorage__queueserviceuri" in present,
        ),
        _hosted_models_problem(
            config_file="hosting_config_file" in present, model="fine_tuned_model" in present
        ),
    ]
    return [problem for problem in problems if problem]


def _storage_problem(*, connection: bool, blob_uri: bool, queue_uri: bool) -> str | None:
    if not connection and not blob_uri:
        return (
            "no storage configured: set DocumentStorage (a connection string) or "
            "DocumentStorage__blobServiceUri (identity-based connection)"
        )
    if not connection and not queue_uri:
        return (
            "an identity-based DocumentStorage connection needs "
            "DocumentStorage__queueServiceUri too (the resume queue lives there)"
        )
    return None


def _hosted_models_problem(*, config_file: bool, model: bool) -> str | None:
    if config_file and model:
        return (
            "both HOSTING_CONFIG_FILE and FINE_TUNED_MODEL are set: the file declares "
            "the hosted models, so remove FINE_TUNED_MODEL (and the other single-model "
            "settings), or remove HOSTING_CONFIG_FILE to host that one model"
        )
    if not config_file and not model:
        return (
            "no hosted model declared: set HOSTING_CONFIG_FILE to a TOML file declaring "
            "the models (see the README), or FINE_TUNED_MODEL for a single model"
        )
    return None


def _again(detail: Any) -> InitErrorDetails:
    """A reported error as pydantic takes it back to raise it again."""
    if detail["type"] == "settings":  # our own: rebuilt from its message
        return InitErrorDetails(
            type=PydanticCustomError("settings", detail["msg"]), loc=(), input=detail["input"]
        )
    again = InitErrorDetails(type=detail["type"], loc=detail["loc"], input=detail["input"])
    if "ctx" in detail:
        again["ctx"] = detail["ctx"]
    return again


@lru_cache(maxsize=1)
def get_settings() -> AppSettings:
    """The app's settings, read once from the environment on first use."""
    return AppSettings()
