#!/bin/sh
# azd postdeploy hook: subscribe the blob trigger to the storage account's blob-created events.
#
# The blob trigger uses the Event Grid source, the only one Flex Consumption supports. Event
# Grid delivers Microsoft.Storage.BlobCreated events under the input container to the blobs
# extension's webhook, whose URL carries the extension's system key. That key exists only once
# the code is deployed and the host has started, which is why this is a hook after deploy and
# not Bicep (as in the azd eventgrid-blob quickstart). Creating an existing subscription
# updates it, so re-running (`azd hooks run postdeploy`) is safe. The key is never printed.
set -eu

for tool in az azd; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "postdeploy: '$tool' is not installed (see README.md, Deploy to Azure)" >&2
    exit 1
  fi
done

# azd passes its environment's values to hooks; load them too when the hook is run by hand.
if [ -z "${AZURE_FUNCTION_APP_NAME:-}" ]; then
  while IFS='=' read -r key value; do
    [ -n "$key" ] || continue
    value=$(printf '%s' "$value" | sed 's/^"//; s/"$//')
    export "$key=$value"
  done <<ENV
$(azd env get-values)
ENV
fi

: "${RESOURCE_GROUP:?is not set: run azd provision first}"
: "${AZURE_FUNCTION_APP_NAME:?is not set: run azd provision first}"
: "${AZURE_FUNCTION_APP_HOSTNAME:?is not set: run azd provision first}"
: "${BLOB_TRIGGER_FUNCTION_NAME:?is not set: run azd provision first}"
: "${EVENTGRID_SYSTEM_TOPIC_NAME:?is not set: run azd provision first}"
: "${INPUT_CONTAINER_NAME:?is not set: run azd provision first}"
: "${AZURE_STORAGE_ACCOUNT_ID:?is not set: run azd provision first}"
: "${DEAD_LETTER_CONTAINER_NAME:?is not set: run azd provision first}"

# The key appears when the host first starts with the blob extension; on a cold Flex
# Consumption app that can take a minute or two after the deploy.
key=""
attempt=1
while :; do
  key=$(az functionapp keys list --resource-group "$RESOURCE_GROUP" \
    --name "$AZURE_FUNCTION_APP_NAME" --query "systemKeys.blobs_extension" \
    --output tsv 2>/dev/null || true)
  [ -n "$key" ] && break
  if [ "$attempt" -ge 20 ]; then
    echo "postdeploy: no blobs_extension key on $AZURE_FUNCTION_APP_NAME after 5 minutes;" \
      "check the app's logs, then run: azd hooks run postdeploy" >&2
    exit 1
  fi
  echo "postdeploy: waiting for the host to start (attempt $attempt of 20)"
  attempt=$((attempt + 1))
  sleep 15
done

# An event Event Grid could not deliver for 24 hours goes to the dead-letter container (written
# with the system topic's own identity, shared keys being off) instead of vanishing; the app's
# intake sweep processes the blob itself in any case.
endpoint="https://${AZURE_FUNCTION_APP_HOSTNAME}/runtime/webhooks/blobs?functionName=Host.Functions.${BLOB_TRIGGER_FUNCTION_NAME}&code=${key}"
# The trailing /blobs/ keeps a container whose name merely starts the same (documents-in-old)
# out of the filter.
subject_prefix="/blobServices/default/containers/${INPUT_CONTAINER_NAME}/blobs/"

az eventgrid system-topic event-subscription create \
  --name "${INPUT_CONTAINER_NAME}-blob-created" \
  --resource-group "$RESOURCE_GROUP" \
  --system-topic-name "$EVENTGRID_SYSTEM_TOPIC_NAME" \
  --endpoint-type webhook \
  --endpoint "$endpoint" \
  --included-event-types Microsoft.Storage.BlobCreated \
  --subject-begins-with "$subject_prefix" \
  --max-delivery-attempts 30 \
  --event-ttl 1440 \
  --deadletter-identity systemassigned \
  --deadletter-identity-endpoint "${AZURE_STORAGE_ACCOUNT_ID}/blobServices/default/containers/${DEAD_LETTER_CONTAINER_NAME}" \
  --output none

echo "postdeploy: blobs created under ${INPUT_CONTAINER_NAME}/ now trigger ${BLOB_TRIGGER_FUNCTION_NAME}"
