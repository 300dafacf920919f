"""The composition root: builds every adapter from settings, once, on first use.

Nothing else constructs SDK clients. In Azure one DefaultAzureCredential (managed identity)
serves the management client, the storage client and the OpenAI bearer-token provider; with
AZURE_AUTH_MODE=local the same SDKs talk to Azurite and the local simulator. Tests build
their own `AppServices` with `build_services(settings)` and override what they need.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import openai
from azure.core.credentials import AccessToken, TokenCredential
from azure.core.exceptions import ResourceExistsError
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.identity import DefaultAzureCredential, get_bearer_token_provider
from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from shared.api.batches import BatchesApi
from shared.api.jobs import JobsApi
from shared.api.operations import OperationsApi
from shared.api.profiles import ProfilesApi
from shared.api.report import ReportApi
from shared.api.waits import DeploymentWait, deployment_wait
from shared.batch.flows import BatchRunner, BatchStarter, BatchTimings
from shared.batch.processing import BatchLimits, DocumentProcessor
from shared.batch.store import BatchQueue, InputListing, OutcomeIndex, RunStore
from shared.catalog import SINGLE_MODEL_SOURCE, Catalog, HostedModel
from shared.cost.learning import LearnedProvisioning
from shared.cost.log import HostingLog, HostingLogReader
from shared.cost.reporting import SavingsReports
from shared.cost.usage import UsageReader
from shared.documents.engine import DocumentEngine, EngineLimits
from shared.documents.intake_sweeper import IntakeSweeper, IntakeSweepState
from shared.documents.job_store import JobStore
from shared.documents.job_store import index_tags as job_index_tags
from shared.documents.jobs import JobRecord
from shared.documents.outcomes import OutcomeStore
from shared.documents.parking import ResumeQueue
from shared.documents.submissions import JobSubmissions
from shared.documents.sweeper import JobSweeper
from shared.documents.tokens import make_token_counter
from shared.evaluation.flows import EvaluationRunner, EvaluationTimings
from shared.evaluation.promotion import Promotions
from shared.evaluation.store import EvaluationStore, PromotionStore
from shared.hosting.deployments import AzureDeployments, DeploymentSpec
from shared.hosting.grace import AUTO
from shared.hosting.holds import LedgerRecord
from shared.hosting.hosted import HostedDeployment
from shared.hosting.ledger import HoldLedger
from shared.hosting.lifecycle import ignore_lifecycle
from shared.hosting.provisioner import AccountRoom, DeploymentProvisioner, ProvisioningTimings
from shared.hosting.reaper import DeploymentReaper
from shared.inference import ChatClient, RetryPolicy
from shared.observability import configure_telemetry, install_log_fields
from shared.schedules.flows import ScheduleReconciler
from shared.settings import AppSettings, get_settings
from shared.storage import JsonBlobStore

logger = logging.getLogger(__name__)

COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"


def utc_now() -> datetime:
    return datetime.now(UTC)


class LocalSimulatorCredential:
    """Bearer tokens for the local simulator, which checks only that one is present."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("local-simulator-token", int(utc_now().timestamp()) + 3600)


@dataclass
class AppServices:
    """Every adapter and service the triggers use, built from one settings object."""

    settings: AppSettings
    catalog: Catalog
    blob_service: BlobServiceClient
    deployments: AzureDeployments
    hosted: dict[str, HostedDeployment]
    provisioner_for: Callable[[str], DeploymentProvisioner]
    jobs: JobStore
    engine: DocumentEngine
    reaper: DeploymentReaper
    sweeper: JobSweeper
    resumes: ResumeQueue
    submissions: JobSubmissions
    jobs_api: JobsApi
    schedules: ScheduleReconciler
    instance: str
    batches: BatchRunner
    # The port the schedule reconciler starts batch windows' runs through.
    batch_starter: BatchStarter
    batch_queue: BatchQueue
    batches_api: BatchesApi
    # The portal's lists: the profiles to submit with, and the operations view.
    profiles_api: ProfilesApi
    operations_api: OperationsApi
    # The savings report, from the hosting log and the job and batch records.
    reports: SavingsReports
    report_api: ReportApi
    intake: IntakeSweeper  # finds input blobs whose event was lost
    # Which model each hosted model deploys next, and the evaluations that gate it.
    promotions: Promotions
    evaluations: EvaluationRunner

    def model(self, name: str | None = None) -> HostedDeployment:
        """A hosted model by name; with none, the catalog's default model."""
        chosen = name or self.catalog.default_model
        if chosen is None or chosen not in self.hosted:
            known = ", ".join(sorted(self.hosted))
            raise KeyError(f"unknown hosted model {chosen!r}; the hosted models are: {known}")
        return self.hosted[chosen]


def build_credential(settings: AppSettings) -> TokenCredential:
    if settings.azure_auth_mode == "local":
        return LocalSimulatorCredential()
    return DefaultAzureCredential(managed_identity_client_id=settings.azure_client_id)


def _storage_hooks(request_policy: SansIOHTTPPolicy[Any, Any] | None) -> dict[str, Any]:
    # The storage SDK calls `raw_request_hook` for every attempt of every request.
    return {"raw_request_hook": request_policy.on_request} if request_policy is not None else {}


def build_blob_service(
    settings: AppSettings,
    credential: TokenCredential,
    request_policy: SansIOHTTPPolicy[Any, Any] | None = None,
) -> BlobServiceClient:
    hooks = _storage_hooks(request_policy)
    if settings.storage_connection_string is not None:
        return BlobServiceClient.from_connection_string(
            settings.storage_connection_string.get_secret_value(), **hooks
        )
    assert settings.storage_blob_service_uri is not None  # guaranteed by the settings validator
    return BlobServiceClient(
        account_url=settings.storage_blob_service_uri, credential=credential, **hooks
    )


# The HTTP clients log every request at INFO; in Application Insights that is one trace per
# request (15% of all log lines in a cold burst), so only their warnings are kept.
for _chatty in ("httpx", "httpx2"):
    logging.getLogger(_chatty).setLevel(logging.WARNING)


def build_queue_client(
    settings: AppSettings,
    credential: TokenCredential,
    queue_name: str | None = None,
    request_policy: SansIOHTTPPolicy[Any, Any] | None = None,
) -> QueueClient:
    """A queue (the resume queue unless named); messages base64-encoded, as the Functions
    queue trigger expects."""
    name = queue_name or settings.resume_queue
    encode = TextBase64EncodePolicy()
    decode = TextBase64DecodePolicy()
    hooks = _storage_hooks(request_policy)
    if settings.storage_connection_string is not None:
        return QueueClient.from_connection_string(
            settings.storage_connection_string.get_secret_value(),
            name,
            message_encode_policy=encode,
            message_decode_policy=decode,
            **hooks,
        )
    assert settings.storage_queue_service_uri is not None  # guaranteed by the settings validator
    return QueueClient(
        settings.storage_queue_service_uri,
        name,
        credential=credential,
        message_encode_policy=encode,
        message_decode_policy=decode,
        **hooks,
    )


def build_openai_client(settings: AppSettings, credential: TokenCredential) -> openai.AzureOpenAI:
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=settings.azure_ca_bundle)
        if settings.azure_ca_bundle
        else True
    )
    http_client = httpx2.Client(
        verify=verify,
        timeout=httpx2.Timeout(settings.inference_timeout_seconds, connect=10.0),
    )
    common: dict[str, Any] = {
        "azure_endpoint": settings.aoai_endpoint,
        "api_version": settings.aoai_api_version,
        # tenacity in shared/inference.py is the only retry policy; the client's would stack.
        "max_retries": 0,
        "http_client": http_client,
    }
    if settings.aoai_api_key is not None:
        return openai.AzureOpenAI(api_key=settings.aoai_api_key.get_secret_value(), **common)
    provider = get_bearer_token_provider(credential, COGNITIVE_SERVICES_SCOPE)
    return openai.AzureOpenAI(azure_ad_token_provider=provider, **common)


_telemetry_configured = False


def configure_telemetry_once(credential: TokenCredential) -> None:
    """The exporter is process-wide: a second configuration would send every log twice."""
    global _telemetry_configured  # noqa: PLW0603 - one exporter per process
    if not _telemetry_configured:
        _telemetry_configured = configure_telemetry(credential)


def deployment_spec(model: HostedModel, catalog: Catalog, owner_tag: str) -> DeploymentSpec:
    """What to deploy for a hosted model."""
    single = catalog.source == SINGLE_MODEL_SOURCE
    return DeploymentSpec(
        name=model.deployment,
        model_name=model.fine_tuned_model,
        model_version=model.version,
        sku=model.deployment_type,
        capacity=model.capacity,
        owner_tag=owner_tag,
        capacity_setting=(
            "DEPLOYMENT_CAPACITY" if single else f"models.{model.name}.capacity in {catalog.source}"
        ),
    )


def build_services(
    settings: AppSettings,
    *,
    clock: Callable[[], datetime] = utc_now,
    request_policy: SansIOHTTPPolicy[Any, Any] | None = None,
) -> AppServices:
    """Every adapter and service, built from `settings`.

    `request_policy`, when given, joins the HTTP pipeline of every storage and management
    client, after the SDK's retries (the benchmark counts round trips with one).
    """
    catalog = settings.catalog
    install_log_fields()
    credential = build_credential(settings)
    if settings.azure_auth_mode == "identity":
        configure_telemetry_once(credential)
    blob_service = build_blob_service(settings, credential, request_policy)
    for container in (
        settings.input_container,
        settings.output_container,
        settings.ledger_container,
        settings.jobs_container,
        settings.batch_container,
        settings.batch_output_container,
        settings.batch_runs_container,
        settings.hosting_log_container,
        settings.evaluations_container,
    ):
        with contextlib.suppress(ResourceExistsError):
            blob_service.create_container(container)
    # One quick retry of a failed management call; beyond it the app's own backoff, shared by
    # every instance through the ledgers (hosting/holds.py), decides when Azure is asked again,
    # so an outage is not met with the SDK's four tries per look from every instance.
    mgmt_kwargs: dict[str, Any] = {"base_url": settings.arm_endpoint, "retry_total": 1}
    if request_policy is not None:
        mgmt_kwargs["per_retry_policies"] = [request_policy]
    if settings.azure_ca_bundle:
        mgmt_kwargs["connection_verify"] = settings.azure_ca_bundle
    mgmt_client = CognitiveServicesManagementClient(
        credential, settings.azure_subscription_id, **mgmt_kwargs
    )
    evaluations_container = blob_service.get_container_client(settings.evaluations_container)
    promotions = Promotions(PromotionStore(evaluations_container), catalog, clock)
    deployments = AzureDeployments(
        mgmt_client,
        resource_group=settings.azure_resource_group,
        account=settings.aoai_account_name,
        polling_interval=settings.management_poll_seconds,
        resolve_spec=promotions.spec_for,
    )
    openai_client = build_openai_client(settings, credential)
    policy = RetryPolicy(
        max_attempts=settings.inference_max_attempts,
        max_seconds=settings.inference_max_seconds,
        request_timeout_seconds=settings.inference_timeout_seconds,
    )
    ledger_store = JsonBlobStore(
        blob_service.get_container_client(settings.ledger_container), LedgerRecord
    )
    timings = ProvisioningTimings(
        poll_interval=settings.management_poll_seconds,
        readiness_timeout=settings.readiness_timeout_seconds,
        delete_timeout=settings.provision_timeout_seconds,
        lease_ttl=settings.operation_lease_seconds,
        create_attempts=settings.create_attempts,
        expected_provision_seconds=settings.expected_provision_seconds,
        max_wait_seconds=settings.park_max_seconds,
    )
    instance = f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
    account_label = f"account {settings.aoai_account_name!r}"

    resumes = ResumeQueue(build_queue_client(settings, credential, request_policy=request_policy))
    resumes.ensure_exists()

    def wake_waiting(record: LedgerRecord, settled_by: str) -> None:
        resumes.wake_waiting(record, settled_by, clock())

    log_container = blob_service.get_container_client(settings.hosting_log_container)
    hosting_log = HostingLog(log_container, clock)

    def provisioner(
        spec: DeploymentSpec, room: AccountRoom | None, model: HostedModel | None = None
    ) -> DeploymentProvisioner:
        return DeploymentProvisioner(
            # A deployment of no declared model is only ever torn down: nothing to log it as.
            on_lifecycle=hosting_log.listener(model) if model is not None else ignore_lifecycle,
            spec=spec,
            ledger=HoldLedger(ledger_store, spec.name, clock),
            deployments=deployments,
            chat=ChatClient(openai_client, spec.name, policy, account=account_label),
            timings=timings,
            room=room,
            on_settled=wake_waiting,
        )

    def provisioner_for(name: str) -> DeploymentProvisioner:
        """A provisioner for any deployment by name: the hosted model's, else teardown only."""
        model = catalog.by_deployment(name)
        if model is not None:
            return hosted[model.name].provisioner
        spec = DeploymentSpec(name, "", "", "", 0, settings.owner_tag)
        return provisioner(spec, None)

    def teardown_idle(name: str, owner: str) -> bool:
        """Delete one of this app's deployments now if no hold needs it (making room)."""
        return provisioner_for(name).teardown_if_idle(owner, idle_grace=timedelta(0)).deleted

    room = AccountRoom(
        deployments,
        account=settings.aoai_account_name,
        limit=settings.account_max_fine_tuned_deployments,
        owner_tag=settings.owner_tag,
        teardown_idle=teardown_idle,
    )
    hosted: dict[str, HostedDeployment] = {}
    for model in catalog.models.values():
        model_provisioner = provisioner(
            deployment_spec(model, catalog, settings.owner_tag), room, model
        )
        hosted[model.name] = HostedDeployment(
            model=model,
            provisioner=model_provisioner,
            chat=ChatClient(openai_client, model.deployment, policy, account=account_label),
            learned_provision=(
                LearnedProvisioning(HostingLogReader(log_container), model.name, clock)
                if model.idle_grace == AUTO
                else None
            ),
        )

    def evaluation_deployment(spec: DeploymentSpec) -> tuple[DeploymentProvisioner, ChatClient]:
        """A candidate's deployment made for an evaluation: provisioned like a hosted model's."""
        chat = ChatClient(openai_client, spec.name, policy, account=account_label)
        return provisioner(spec, room), chat

    jobs_container = blob_service.get_container_client(settings.jobs_container)
    jobs = JobStore(
        JsonBlobStore(jobs_container, JobRecord, index_tags=job_index_tags), jobs_container
    )
    output = blob_service.get_container_client(settings.output_container)
    outcomes = OutcomeStore(output, blob_service)
    counter = make_token_counter(settings.tiktoken_encoding)
    limits = EngineLimits(
        job_hold_seconds=settings.job_hold_seconds,
        ready_timeout_seconds=settings.provision_timeout_seconds,
        job_timeout_seconds=settings.job_timeout_seconds,
        max_attempts=settings.max_job_attempts,
        not_found_retry_seconds=settings.not_found_retry_seconds,
        max_document_bytes=settings.max_document_bytes,
        max_chunks=settings.max_chunks,
        retry_max_seconds=settings.park_max_seconds,
        follower_park_seconds=settings.park_max_seconds,
        throttle_park_seconds=settings.throttle_park_seconds,
    )
    engine = DocumentEngine(
        catalog=catalog,
        hosted=hosted,
        jobs=jobs,
        outcomes=outcomes,
        resumes=resumes,
        default_profile=settings.default_profile,
        counter=counter,
        limits=limits,
        clock=clock,
        instance=instance,
    )
    reaper = DeploymentReaper(
        deployments=deployments,
        hosted=hosted,
        provisioner_for=provisioner_for,
        owner_tag=settings.owner_tag,
        idle_grace=timedelta(seconds=settings.idle_grace_seconds),
        max_lifetime=timedelta(seconds=settings.max_deployment_lifetime_seconds),
        poll_seconds=settings.management_poll_seconds,
        longest_pause_seconds=settings.park_max_seconds,
        on_lifecycle=lambda name: hosting_log.listener(catalog.models[name]),
    )
    submissions = JobSubmissions(
        jobs=jobs,
        input_container=blob_service.get_container_client(settings.input_container),
        output_container=output,
        profiles=catalog.profiles,
        default_profile=settings.default_profile,
        max_document_bytes=settings.max_document_bytes,
        clock=clock,
    )

    def wait_of(model_name: str) -> DeploymentWait | None:
        """Where a hosted model's provisioning stands, for a job waiting on it."""
        waited_on = hosted.get(model_name)
        if waited_on is None:
            return None
        return deployment_wait(
            waited_on.ledger.read(), clock(), default_seconds=settings.expected_provision_seconds
        )

    jobs_api = JobsApi(
        submissions=submissions,
        max_submit_bytes=settings.max_submit_bytes,
        deployment_wait=wait_of,
        clock=clock,
    )
    sweeper = JobSweeper(
        jobs=jobs,
        resumes=resumes,
        grace=timedelta(seconds=settings.sweep_grace_seconds),
        clock=clock,
    )
    batch_queue = BatchQueue(
        build_queue_client(settings, credential, settings.batch_queue, request_policy)
    )
    batch_queue.ensure_exists()
    listing = InputListing(
        blob_service.get_container_client(settings.batch_container), settings.batch_page_size
    )
    batch_output = blob_service.get_container_client(settings.batch_output_container)
    runs = RunStore(blob_service.get_container_client(settings.batch_runs_container))
    batches = BatchRunner(
        catalog=catalog,
        hosted=hosted,
        runs=runs,
        listing=listing,
        processor=DocumentProcessor(
            listing=listing,
            index=OutcomeIndex(batch_output),
            outcomes=OutcomeStore(batch_output, blob_service),
            counter=counter,
            limits=BatchLimits(
                max_document_bytes=settings.max_document_bytes,
                max_chunks=settings.max_chunks,
                document_attempts=settings.batch_document_attempts,
            ),
            clock=clock,
        ),
        queue=batch_queue,
        counter=counter,
        timings=BatchTimings(
            hold_seconds=settings.batch_hold_seconds,
            slice_seconds=settings.batch_slice_seconds,
            page_size=settings.batch_page_size,
            concurrency=settings.batch_concurrency,
            minute_seconds=settings.rate_limit_minute_seconds,
            not_found_retry_seconds=settings.not_found_retry_seconds,
            retry_seconds=settings.management_poll_seconds,
            sweep_grace_seconds=settings.sweep_grace_seconds,
        ),
        default_profile=settings.default_profile,
        clock=clock,
        instance=instance,
    )
    # Batch windows are decided by the reconciler and run by shared/batch/ (its port).
    batch_starter = BatchStarter(batches)
    schedules = ScheduleReconciler(hosted=hosted, clock=clock, batch_starter=batch_starter)
    reports = SavingsReports(
        log=HostingLogReader(log_container),
        usage=UsageReader(jobs_container, output, runs),
        catalog=catalog,
        clock=clock,
        time_scale=settings.cost_time_scale,
        expected_provision_seconds=settings.expected_provision_seconds,
    )
    evaluations = EvaluationRunner(
        store=EvaluationStore(evaluations_container),
        promotions=promotions,
        hosted=hosted,
        deployment_for=evaluation_deployment,
        owner_tag=settings.owner_tag,
        counter=counter,
        timings=EvaluationTimings(
            hold_seconds=settings.batch_hold_seconds,
            ready_timeout_seconds=settings.provision_timeout_seconds,
            concurrency=settings.batch_concurrency,
            minute_seconds=settings.rate_limit_minute_seconds,
            not_found_retry_seconds=settings.not_found_retry_seconds,
            example_timeout_seconds=settings.inference_max_seconds,
        ),
        clock=clock,
        instance=instance,
    )
    return AppServices(
        settings=settings,
        catalog=catalog,
        blob_service=blob_service,
        deployments=deployments,
        hosted=hosted,
        provisioner_for=provisioner_for,
        jobs=jobs,
        engine=engine,
        reaper=reaper,
        sweeper=sweeper,
        resumes=resumes,
        submissions=submissions,
        jobs_api=jobs_api,
        schedules=schedules,
        instance=instance,
        batches=batches,
        batch_starter=batch_starter,
        batch_queue=batch_queue,
        batches_api=BatchesApi(batches),
        profiles_api=ProfilesApi(
            catalog,
            default_profile=settings.default_profile,
            max_document_bytes=settings.max_document_bytes,
            max_submit_bytes=settings.max_submit_bytes,
        ),
        operations_api=OperationsApi(
            deployments=deployments,
            hosted=hosted,
            runs=batches.runs,
            clock=clock,
            default_provision_seconds=settings.expected_provision_seconds,
        ),
        reports=reports,
        report_api=ReportApi(reports),
        intake=IntakeSweeper(
            input_container=blob_service.get_container_client(settings.input_container),
            state=JsonBlobStore(jobs_container, IntakeSweepState),
            jobs=jobs,
            process_blob=engine.process_blob,
            clock=clock,
            grace=timedelta(seconds=settings.intake_grace_seconds),
            page_size=settings.intake_sweep_page_size,
            budget_seconds=INTAKE_SWEEP_BUDGET_SECONDS,
        ),
        promotions=promotions,
        evaluations=evaluations,
    )


# One intake pass stops handing documents to the engine after this long (a warm deployment
# answers inline); what is left is found by the next pass.
INTAKE_SWEEP_BUDGET_SECONDS = 300.0

_services: AppServices | None = None
_services_lock = threading.Lock()


def get_services() -> AppServices:
    """The app's services, built once on first use from the environment's settings.

    A cold instance's first deliveries arrive on several threads at once; the lock makes them
    share one build (one credential, one set of clients) instead of each building its own.
    """
    global _services  # noqa: PLW0603 - the composition root's one instance per process
    if _services is None:
        with _services_lock:
            if _services is None:
                _services = build_services(get_settings())
    return _services


def reset_services() -> None:
    """Forget the built services (tests that change the environment between cases)."""
    global _services  # noqa: PLW0603
    with _services_lock:
        _services = None
