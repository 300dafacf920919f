"""The app's settings: one pydantic-settings model read from app settings / environment.

Loaded lazily and cached by `get_settings()`, so importing `function_app` needs no settings and
opens no connection. Every field here appears in `local.settings.sample.json`, the README's
settings table and the Bicep app settings.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    # --- The fine-tuned deployment ----------------------------------------------------------
    deployment_name: str = Field("ft-on-demand", alias="DEPLOYMENT_NAME")
    model_name: str = Field(alias="FINE_TUNED_MODEL")
    model_version: str = Field("1", alias="FINE_TUNED_MODEL_VERSION")
    deployment_sku: Literal["Standard", "GlobalStandard", "DeveloperTier", "ProvisionedManaged"] = (
        Field("Standard", alias="DEPLOYMENT_SKU")
    )
    deployment_capacity: int = Field(10, ge=1, alias="DEPLOYMENT_CAPACITY")
    owner_tag: str = Field("on-demand-hosting", alias="OWNER_TAG")

    # --- Storage ----------------------------------------------------------------------------
    storage_connection_string: SecretStr | None = Field(
        None, validation_alias=AliasChoices("DocumentStorage", "DOCUMENT_STORAGE")
    )
    storage_blob_service_uri: str | None = Field(None, alias="DocumentStorage__blobServiceUri")
    input_container: str = Field("documents-in", alias="INPUT_CONTAINER")
    output_container: str = Field("documents-out", alias="OUTPUT_CONTAINER")
    ledger_container: str = Field("deployment-ledger", alias="LEDGER_CONTAINER")
    jobs_container: str = Field("jobs", alias="JOBS_CONTAINER")

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
    job_timeout_seconds: float = Field(1680, gt=0, alias="JOB_TIMEOUT_SECONDS")
    max_job_attempts: int = Field(5, ge=1, alias="MAX_JOB_ATTEMPTS")

    # --- Inference --------------------------------------------------------------------------
    inference_max_attempts: int = Field(20, ge=1, alias="INFERENCE_MAX_ATTEMPTS")
    inference_max_seconds: float = Field(300, gt=0, alias="INFERENCE_MAX_SECONDS")
    inference_timeout_seconds: float = Field(120, gt=0, alias="INFERENCE_TIMEOUT_SECONDS")

    # --- Documents --------------------------------------------------------------------------
    processing_profiles: str | None = Field(None, alias="PROCESSING_PROFILES")
    default_profile: str = Field("default", alias="DEFAULT_PROFILE")
    model_context_tokens: int = Field(128_000, ge=1024, alias="MODEL_CONTEXT_TOKENS")
    max_document_bytes: int = Field(2_000_000, ge=1, alias="MAX_DOCUMENT_BYTES")
    max_chunks: int = Field(40, ge=1, alias="MAX_CHUNKS")
    max_submit_bytes: int = Field(2_500_000, ge=1, alias="MAX_SUBMIT_BYTES")
    tiktoken_encoding: str = Field("o200k_base", alias="TIKTOKEN_ENCODING")

    @model_validator(mode="after")
    def _storage_is_configured(self) -> AppSettings:
        if self.storage_connection_string is None and self.storage_blob_service_uri is None:
            raise ValueError(
                "no storage configured: set DocumentStorage (a connection string) or "
                "DocumentStorage__blobServiceUri (identity-based connection)"
            )
        return self


@lru_cache(maxsize=1)
def get_settings() -> AppSettings:
    """The app's settings, read once from the environment on first use."""
    return AppSettings()
