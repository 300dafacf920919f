"""Blob triggers: polling containers, delivering each blob version once, retries and poison.

Owns: trigger paths (`container/prefix/{name}.ext`), the storage `connection` clients, the
scan of the trigger's container (the host's scan, without Event Grid), delivery once per
(blob, ETag) with at most `concurrency` downloads and invocations at once (host.json
`extensions.blobs.maxDegreeOfParallelism`, else 8), retries up to maxDequeueCount (5) and
then a message on `webjobs-blobtrigger-poison`, and blob receipts.

Blob receipts (which (blob, ETag) pairs were delivered) are kept in memory and, unless
`persist_receipts` is off, also as empty blobs in the `azure-webjobs-hosts` container of the
trigger's storage account, named like the host's
(`blobreceipts/<hostId>/Host.Functions.<name>/<etag>/<container>/<blob>`), so a restart does
not re-deliver blobs that were already processed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import re
import time

import azure.functions as func
from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob.aio import BlobServiceClient, ContainerClient, LinearRetry
from azure.storage.queue.aio import QueueClient
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
)

from scripts.functions_host.errors import FunctionsHostError
from scripts.functions_host.indexing import (
    IndexedFunction,
    extension_setting,
    plain,
    resolve_setting_expressions,
    storage_connection,
)
from scripts.functions_host.triggers import HostContext, TriggerKind

logger = logging.getLogger(__name__)

# The host's defaults: blob-trigger maxDequeueCount and extensions.blobs.maxDegreeOfParallelism.
DEFAULT_BLOB_MAX_ATTEMPTS = 5
DEFAULT_BLOB_CONCURRENCY = 8
RECEIPTS_CONTAINER = "azure-webjobs-hosts"
POISON_QUEUE = "webjobs-blobtrigger-poison"
STOP_RECANCEL_SECONDS = 0.5  # how long stop() waits before cancelling a poller again

_TEMPLATE_PARAM = re.compile(r"\{([^{}]+)\}")
_INVALID_OPTIONS = "blob concurrency and attempts must be >= 1 and the poll interval > 0"


@dataclasses.dataclass(frozen=True)
class BlobOptions:
    """How often containers are scanned, how many blobs run at once, and retries."""

    poll_seconds: float = 1.0
    # None: host.json's extensions.blobs.maxDegreeOfParallelism, else 8.
    concurrency: int | None = None
    max_attempts: int = DEFAULT_BLOB_MAX_ATTEMPTS
    retry_delay: float = 0.5  # before the first retry; doubles each time, at most 10 s
    # False keeps receipts in memory only, so a restart re-delivers every blob.
    persist_receipts: bool = True

    def __post_init__(self) -> None:
        concurrency_ok = self.concurrency is None or self.concurrency >= 1
        if not concurrency_ok or self.max_attempts < 1 or self.poll_seconds <= 0:
            raise FunctionsHostError(_INVALID_OPTIONS)


class BlobPathPattern:
    """A blob trigger path: `container/{name}`, `container/prefix/{name}`, `{name}.ext`..."""

    def __init__(self, path: str) -> None:
        self.path = path.strip("/")
        container, _, blob_pattern = self.path.partition("/")
        if not container or "{" in container:
            raise FunctionsHostError(
                f"blob trigger path {path!r} must start with a literal container"
            )
        self.container = container
        first_param = blob_pattern.find("{")
        self.prefix = blob_pattern if first_param < 0 else blob_pattern[:first_param]
        regex, position = "", 0
        for match in _TEMPLATE_PARAM.finditer(blob_pattern):
            regex += re.escape(blob_pattern[position : match.start()])
            # {name} spans virtual directories, as in the host (`a/b.txt` is one name).
            regex += f"(?P<{_group_name(match.group(1))}>.+)"
            position = match.end()
        regex += re.escape(blob_pattern[position:])
        self._regex = re.compile("^" + regex + "$") if blob_pattern else re.compile("^.+$")

    def match(self, blob_name: str) -> dict[str, str] | None:
        found = self._regex.match(blob_name)
        return None if found is None else found.groupdict()


def _group_name(param: str) -> str:
    name = re.sub(r"\W", "_", param)
    return name if name and not name[0].isdigit() else f"_{name}"


def _etag_key(etag: str) -> str:
    """ETags without quotes: listings and response headers disagree on quoting."""
    return etag.strip().strip('"')


@dataclasses.dataclass
class _BlobWatch:
    function: IndexedFunction
    pattern: BlobPathPattern
    setting: str
    connection_string: str
    client: BlobServiceClient
    receipts_loaded: bool = False
    scans_started: int = 0
    scans_completed: int = 0
    wake: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    missing_container_logged: bool = False
    last_scan_error: str | None = None

    @property
    def function_id(self) -> str:
        return f"Host.Functions.{self.function.name}"


class BlobTriggers(TriggerKind):
    """`blobTrigger` functions, each fed by a poller of its container."""

    def __init__(self, context: HostContext) -> None:
        super().__init__(context)
        options = context.options_for(BlobOptions)
        concurrency = options.concurrency
        if concurrency is None:
            configured = extension_setting(context.extensions, "blobs", "maxDegreeOfParallelism")
            parallelism = None if configured is None else int(configured)
            concurrency = parallelism or DEFAULT_BLOB_CONCURRENCY
        if concurrency < 1:
            raise FunctionsHostError(_INVALID_OPTIONS)
        self._options = options
        self._concurrency = concurrency
        self._watches: list[_BlobWatch] = []
        self._receipts: set[tuple[str, str, str]] = set()
        self._in_flight: set[tuple[str, str]] = set()
        self._pollers: list[asyncio.Task[None]] = []
        self._slots: asyncio.Semaphore | None = None
        self._stopping = False

    def add(self, function: IndexedFunction) -> None:
        where = f"blob trigger '{function.name}'"
        path = resolve_setting_expressions(
            str(function.trigger.get("path", "")), self.context.environ, where=f"path of {where}"
        )
        setting, connection_string = storage_connection(
            str(function.trigger.get("connection") or ""), self.context.environ, where=where
        )
        if function.trigger.get("source") == "EventGrid":
            logger.info(
                "Function '%s' uses source=EventGrid; functions_host polls the container instead",
                function.name,
            )
        try:
            # No I/O yet: the aio transport opens its session on the first request.
            client = BlobServiceClient.from_connection_string(
                connection_string,
                # Fail a scan in seconds, not minutes, when storage is down; the next poll retries.
                retry_policy=LinearRetry(backoff=1, retry_total=2, random_jitter_range=1),
            )
        except ValueError as exc:
            raise FunctionsHostError(
                f"{where}: the app setting {setting} is not a valid storage connection string"
            ) from exc
        pattern = BlobPathPattern(path)
        self._watches.append(_BlobWatch(function, pattern, setting, connection_string, client))

    def describe(self) -> list[str]:
        return [
            f"{watch.function.name}: blobTrigger ({watch.pattern.path} via {watch.setting})"
            for watch in self._watches
        ]

    async def start(self) -> None:
        self._slots = asyncio.Semaphore(self._concurrency)
        for watch in self._watches:
            self._pollers.append(
                asyncio.create_task(self._poll(watch), name=f"blobs:{watch.function.name}")
            )

    async def stop(self) -> None:
        # One cancel is not always enough: before Python 3.12, asyncio.wait_for returns the
        # wait's result when a cancel lands just as that wait completes, and the poller would
        # poll on while stop() waited for it forever. The flag ends the loop at its next turn,
        # and the cancel is repeated until every poller has ended.
        self._stopping = True
        pending = set(self._pollers)
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=STOP_RECANCEL_SECONDS)

    async def close(self) -> None:
        for watch in self._watches:
            await watch.client.close()

    async def wait_for_idle(self, timeout: float = 10.0) -> None:
        """Return once every poller has scanned after this call and nothing is in flight.

        Pollers are woken at once, so this does not wait for the poll interval.
        """
        targets = {id(w): w.scans_started + 1 for w in self._watches}
        for watch in self._watches:
            watch.wake.set()
        deadline = time.monotonic() + timeout
        while True:
            scanned = all(w.scans_completed >= targets[id(w)] for w in self._watches)
            if scanned and not self._in_flight:
                return
            if time.monotonic() > deadline:
                errors = [w.last_scan_error for w in self._watches if w.last_scan_error]
                raise TimeoutError(
                    f"blob pollers not idle after {timeout:.1f}s "
                    f"({len(self._in_flight)} in flight; last errors: {errors or 'none'})"
                )
            await asyncio.sleep(0.02)

    # -- scanning --

    async def _poll(self, watch: _BlobWatch) -> None:
        while not self._stopping:
            watch.scans_started += 1
            try:
                await self._scan(watch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                if message != watch.last_scan_error:
                    logger.warning("Blob scan for '%s' failed: %s", watch.function.name, message)
                watch.last_scan_error = message
            else:
                watch.last_scan_error = None
                watch.scans_completed += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watch.wake.wait(), self._options.poll_seconds)
            watch.wake.clear()

    async def _scan(self, watch: _BlobWatch) -> None:
        container = watch.client.get_container_client(watch.pattern.container)
        if self._options.persist_receipts and not watch.receipts_loaded:
            await self._load_receipts(watch)
        try:
            async for blob in container.list_blobs(name_starts_with=watch.pattern.prefix or None):
                if watch.pattern.match(blob.name) is None:
                    continue
                etag = _etag_key(str(blob.etag))
                key = (watch.function.name, blob.name)
                if (*key, etag) in self._receipts or key in self._in_flight:
                    continue
                self._in_flight.add(key)
                self.context.invoker.track(
                    self._deliver(watch, container, blob.name, etag),
                    f"blob:{watch.function.name}:{blob.name}",
                )
        except ResourceNotFoundError:
            if not watch.missing_container_logged:
                watch.missing_container_logged = True
                logger.warning(
                    "Container '%s' for blob trigger '%s' does not exist yet; waiting for it",
                    watch.pattern.container,
                    watch.function.name,
                )
            return
        watch.missing_container_logged = False

    # -- receipts --

    def _receipt_prefix(self, watch: _BlobWatch) -> str:
        return f"blobreceipts/{self.context.host_id}/{watch.function_id}/"

    async def _load_receipts(self, watch: _BlobWatch) -> None:
        receipts = watch.client.get_container_client(RECEIPTS_CONTAINER)
        prefix = self._receipt_prefix(watch)
        try:
            async for receipt in receipts.list_blobs(name_starts_with=prefix):
                etag, _, blob_path = receipt.name[len(prefix) :].partition("/")
                container, _, blob_name = blob_path.partition("/")
                if container == watch.pattern.container:
                    self._receipts.add((watch.function.name, blob_name, etag))
        except ResourceNotFoundError:
            pass
        watch.receipts_loaded = True

    async def _write_receipt(self, watch: _BlobWatch, blob_name: str, etag: str) -> None:
        self._receipts.add((watch.function.name, blob_name, etag))
        if not self._options.persist_receipts:
            return
        receipts = watch.client.get_container_client(RECEIPTS_CONTAINER)
        path = f"{self._receipt_prefix(watch)}{etag}/{watch.pattern.container}/{blob_name}"
        try:
            with contextlib.suppress(ResourceExistsError):
                await receipts.create_container()
            await receipts.upload_blob(path, b"", overwrite=True)
        except AzureError as exc:
            # The in-memory receipt still prevents redelivery in this run.
            logger.warning("Could not persist the blob receipt %s: %s", path, exc)

    # -- delivery --

    async def _deliver(
        self, watch: _BlobWatch, container: ContainerClient, blob_name: str, etag: str
    ) -> None:
        key = (watch.function.name, blob_name)
        try:
            await self._deliver_with_retries(watch, container, blob_name, etag)
        finally:
            self._in_flight.discard(key)

    async def _deliver_with_retries(
        self, watch: _BlobWatch, container: ContainerClient, blob_name: str, etag: str
    ) -> None:
        slots = self._slots
        assert slots is not None
        blob = container.get_blob_client(blob_name)
        full_name = f"{watch.pattern.container}/{blob_name}"
        try:
            async with slots:
                downloader = await blob.download_blob(
                    etag=f'"{etag}"', match_condition=MatchConditions.IfNotModified
                )
                data = await downloader.readall()
        except (ResourceModifiedError, ResourceNotFoundError):
            # Changed or deleted since the listing: the next scan sees its current state.
            logger.debug("Blob %s changed before delivery; rescanning", full_name)
            return
        except AzureError as exc:
            # No receipt is written, so a later scan tries this blob again.
            logger.warning(
                "Could not download %s for '%s': %s", full_name, watch.function.name, exc
            )
            return
        properties = downloader.properties
        blob_properties = {
            "ETag": f'"{etag}"',
            "ContentLength": properties.size,
            "ContentType": properties.content_settings.content_type,
            "LastModified": properties.last_modified.isoformat()
            if properties.last_modified
            else None,
            "BlobType": str(plain(properties.blob_type)),
        }
        reason = f"New blob detected(LogsAndContainerScan): {full_name}"
        max_attempts = self._options.max_attempts
        attempts = itertools.count(1)

        async def deliver() -> bool:
            attempt = next(attempts)
            stream = func.blob.InputStream(
                data=data,
                name=full_name,
                uri=blob.url,
                length=properties.size,
                blob_properties=blob_properties,
                metadata=dict(properties.metadata or {}),
            )
            async with slots:
                record, _ = await self.context.invoker.invoke(
                    watch.function,
                    stream,
                    reason,
                    retry_count=attempt - 1,
                    max_retry_count=max_attempts - 1,
                )
            return record.succeeded

        retrying = AsyncRetrying(
            retry=retry_if_result(lambda succeeded: not succeeded),
            stop=stop_after_attempt(max_attempts),
            wait=wait_exponential(multiplier=self._options.retry_delay, max=10.0),
        )
        try:
            await retrying(deliver)
        except RetryError:
            pass
        else:
            await self._write_receipt(watch, blob_name, etag)
            return
        logger.error(
            "Blob '%s' will be skipped for function '%s' because this blob with ETag %s failed "
            "%d times (poison)",
            full_name,
            watch.function.name,
            etag,
            max_attempts,
        )
        await self._write_receipt(watch, blob_name, etag)
        await self._write_poison_message(watch, blob_name, etag)

    async def _write_poison_message(self, watch: _BlobWatch, blob_name: str, etag: str) -> None:
        message = json.dumps(
            {
                "Type": "BlobTrigger",
                "FunctionId": watch.function_id,
                "BlobType": "BlockBlob",
                "ContainerName": watch.pattern.container,
                "BlobName": blob_name,
                "ETag": f'"{etag}"',
            }
        )
        try:
            queue = QueueClient.from_connection_string(watch.connection_string, POISON_QUEUE)
            async with queue:
                with contextlib.suppress(ResourceExistsError):
                    await queue.create_queue()
                await queue.send_message(message)
        except (AzureError, ValueError) as exc:
            logger.warning("Poison message not queued to %s: %s (%s)", POISON_QUEUE, exc, message)
