#!/bin/sh
# azd preprovision hook: check the azd environment's parameters before anything is created, and
# say how to fix each problem (all of them at once). Reads only azd environment values, which
# azd passes to hooks; infra/main.parameters.json maps them to the template's parameters.
set -u

problems=""
problem() {
  problems="${problems}  - $1
"
}

fine_tuned_model="${FINE_TUNED_MODEL:-}"
hosting_config_file="${HOSTING_CONFIG_FILE:-}"
if [ -n "$fine_tuned_model" ] && [ -n "$hosting_config_file" ]; then
  problem "both FINE_TUNED_MODEL and HOSTING_CONFIG_FILE are set; the file declares the hosted models: azd env set FINE_TUNED_MODEL '' (or azd env set HOSTING_CONFIG_FILE '' to host that one model)"
elif [ -z "$fine_tuned_model" ] && [ -z "$hosting_config_file" ]; then
  problem "no hosted model: azd env set FINE_TUNED_MODEL <the fine-tuning job's fine_tuned_model>, or commit a hosting.toml (see hosting.example.toml) and azd env set HOSTING_CONFIG_FILE hosting.toml"
elif [ -n "$hosting_config_file" ] && [ ! -f "$hosting_config_file" ]; then
  problem "HOSTING_CONFIG_FILE=$hosting_config_file is not a file in this directory, which is what azd deploys: commit it here (see hosting.example.toml) or fix the path"
fi

create="${AZURE_OPENAI_CREATE:-false}"
if [ "$create" != "true" ] && [ -z "${AZURE_OPENAI_ACCOUNT_NAME:-}" ]; then
  problem "AZURE_OPENAI_ACCOUNT_NAME is not set: azd env set AZURE_OPENAI_ACCOUNT_NAME <the account holding the fine-tuned model> (and AZURE_OPENAI_RESOURCE_GROUP <its resource group>), or azd env set AZURE_OPENAI_CREATE true to create one"
fi
case "$create" in
  true | false) ;;
  *) problem "AZURE_OPENAI_CREATE=$create must be true or false" ;;
esac

case "${DEPLOYMENT_MANAGER_ROLE:-CognitiveServicesOpenAIContributor}" in
  CognitiveServicesOpenAIContributor | CognitiveServicesContributor) ;;
  *) problem "DEPLOYMENT_MANAGER_ROLE=${DEPLOYMENT_MANAGER_ROLE:-} must be CognitiveServicesOpenAIContributor (the default) or CognitiveServicesContributor" ;;
esac

if [ -n "$problems" ]; then
  printf 'preprovision: the azd environment cannot be provisioned:\n%s' "$problems" >&2
  exit 1
fi
echo "preprovision: parameters checked"
