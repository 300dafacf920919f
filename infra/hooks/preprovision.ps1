# azd preprovision hook: the same checks as preprovision.sh (read its comments): every problem
# with the azd environment's parameters, each with its fix, before anything is created.
$ErrorActionPreference = 'Stop'

$problems = @()
$fineTunedModel = $env:FINE_TUNED_MODEL
$hostingConfigFile = $env:HOSTING_CONFIG_FILE
if ($fineTunedModel -and $hostingConfigFile) {
  $problems += "both FINE_TUNED_MODEL and HOSTING_CONFIG_FILE are set; the file declares the hosted models: azd env set FINE_TUNED_MODEL '' (or azd env set HOSTING_CONFIG_FILE '' to host that one model)"
} elseif (-not $fineTunedModel -and -not $hostingConfigFile) {
  $problems += "no hosted model: azd env set FINE_TUNED_MODEL <the fine-tuning job's fine_tuned_model>, or commit a hosting.toml (see hosting.example.toml) and azd env set HOSTING_CONFIG_FILE hosting.toml"
} elseif ($hostingConfigFile -and -not (Test-Path -PathType Leaf $hostingConfigFile)) {
  $problems += "HOSTING_CONFIG_FILE=$hostingConfigFile is not a file in this directory, which is what azd deploys: commit it here (see hosting.example.toml) or fix the path"
}

$create = if ($env:AZURE_OPENAI_CREATE) { $env:AZURE_OPENAI_CREATE } else { 'false' }
if ($create -ne 'true' -and -not $env:AZURE_OPENAI_ACCOUNT_NAME) {
  $problems += "AZURE_OPENAI_ACCOUNT_NAME is not set: azd env set AZURE_OPENAI_ACCOUNT_NAME <the account holding the fine-tuned model> (and AZURE_OPENAI_RESOURCE_GROUP <its resource group>), or azd env set AZURE_OPENAI_CREATE true to create one"
}
if ($create -notin @('true', 'false')) {
  $problems += "AZURE_OPENAI_CREATE=$create must be true or false"
}

$role = if ($env:DEPLOYMENT_MANAGER_ROLE) { $env:DEPLOYMENT_MANAGER_ROLE } else { 'CognitiveServicesOpenAIContributor' }
if ($role -notin @('CognitiveServicesOpenAIContributor', 'CognitiveServicesContributor')) {
  $problems += "DEPLOYMENT_MANAGER_ROLE=$role must be CognitiveServicesOpenAIContributor (the default) or CognitiveServicesContributor"
}

if ($problems.Count -gt 0) {
  $listed = ($problems | ForEach-Object { "  - $_" }) -join "`n"
  Write-Error "preprovision: the azd environment cannot be provisioned:`n$listed"
  exit 1
}
Write-Output 'preprovision: parameters checked'
