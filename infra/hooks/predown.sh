#!/bin/sh
# azd predown hook: leave nothing billed behind before `azd down` deletes the resource group.
#
# The app creates fine-tuned model deployments on the Azure OpenAI account, which usually
# lives in another resource group and so survives `azd down`; a deployment it left up (idle
# grace not yet passed, a job on hold) would go on billing its hourly hosting fee. So:
#   1. stop the function app, so that no blob or timer provisions a deployment again;
#   2. delete every deployment on the account tagged managed-by=<OWNER_TAG> (only the app's:
#      the same rule the app's reaper follows);
#   3. remove the app identity's role assignments on the account, which sit outside the
#      resource group and would otherwise remain, pointing at a deleted identity.
# Any failure stops `azd down`, so that nothing is torn down while a deployment may still bill.
set -eu

if ! command -v az >/dev/null 2>&1; then
  echo "predown: 'az' is not installed (see README.md, Deploy to Azure)" >&2
  exit 1
fi

# azd passes its environment's values to hooks; load them too when the hook is run by hand.
if [ -z "${AOAI_ACCOUNT_NAME:-}" ] && command -v azd >/dev/null 2>&1; then
  while IFS='=' read -r key value; do
    [ -n "$key" ] || continue
    value=$(printf '%s' "$value" | sed 's/^"//; s/"$//')
    export "$key=$value"
  done <<ENV
$(azd env get-values)
ENV
fi

if [ -z "${AOAI_ACCOUNT_NAME:-}" ]; then
  echo "predown: nothing was provisioned in this environment; nothing to clean up"
  exit 0
fi
: "${AOAI_SUBSCRIPTION_ID:?is not set}"
: "${AOAI_RESOURCE_GROUP:?is not set}"
: "${AOAI_ACCOUNT_ID:?is not set}"
: "${OWNER_TAG:?is not set}"

# 1. Stop the app (it may already be gone after a half-finished `azd down`).
if [ -n "${AZURE_FUNCTION_APP_NAME:-}" ] && az functionapp show --resource-group "$RESOURCE_GROUP" \
  --name "$AZURE_FUNCTION_APP_NAME" --output none 2>/dev/null; then
  az functionapp stop --resource-group "$RESOURCE_GROUP" --name "$AZURE_FUNCTION_APP_NAME" --output none
  echo "predown: stopped $AZURE_FUNCTION_APP_NAME"
fi

# 2. The app's deployments. az rest with an explicit api-version, so that the tags are in the
#    answer whatever api-version the installed CLI's cognitiveservices commands use.
if ! errors=$(az resource show --ids "$AOAI_ACCOUNT_ID" --output none 2>&1); then
  case "$errors" in
    *ResourceNotFound* | *ResourceGroupNotFound*)
      echo "predown: $AOAI_ACCOUNT_NAME no longer exists; no deployment to delete"
      exit 0
      ;;
    *)
      echo "predown: cannot read $AOAI_ACCOUNT_NAME: $errors" >&2
      exit 1
      ;;
  esac
fi
owned=$(az rest --method get \
  --url "${AOAI_ACCOUNT_ID}/deployments?api-version=2024-10-01" \
  --query "value[?tags.\"managed-by\"=='${OWNER_TAG}'].name" --output tsv)
for deployment in $owned; do
  echo "predown: deleting deployment $deployment (managed-by=$OWNER_TAG) on $AOAI_ACCOUNT_NAME"
  az cognitiveservices account deployment delete --subscription "$AOAI_SUBSCRIPTION_ID" \
    --resource-group "$AOAI_RESOURCE_GROUP" --name "$AOAI_ACCOUNT_NAME" \
    --deployment-name "$deployment" --output none
done
[ -n "$owned" ] || echo "predown: no deployment tagged managed-by=$OWNER_TAG on $AOAI_ACCOUNT_NAME"

# 3. The identity's role assignments on the account.
if [ -n "${AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID:-}" ]; then
  assignments=$(az role assignment list --scope "$AOAI_ACCOUNT_ID" --fill-principal-name false \
    --query "[?principalId=='${AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID}'].id" --output tsv)
  if [ -n "$assignments" ]; then
    # shellcheck disable=SC2086 # one id per word, on purpose
    az role assignment delete --ids $assignments --output none
    echo "predown: removed the app identity's role assignments on $AOAI_ACCOUNT_NAME"
  fi
fi
