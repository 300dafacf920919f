# azd predown hook: leave nothing billed behind before `azd down` deletes the resource group.
#
# The same steps as predown.sh (read its comments): stop the function app; delete every
# deployment on the Azure OpenAI account tagged managed-by=<OWNER_TAG>; remove the app
# identity's role assignments on the account. Any failure stops `azd down`.
$ErrorActionPreference = 'Stop'

if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
  Write-Error "predown: 'az' is not installed (see README.md, Deploy to Azure)"
  exit 1
}

# azd passes its environment's values to hooks; load them too when the hook is run by hand.
if (-not $env:AOAI_ACCOUNT_NAME -and (Get-Command azd -ErrorAction SilentlyContinue)) {
  foreach ($line in (& azd env get-values)) {
    if ($line -match '^([^=]+)=(.*)$') {
      [Environment]::SetEnvironmentVariable($Matches[1], ($Matches[2] -replace '^"|"$', ''))
    }
  }
}

if (-not $env:AOAI_ACCOUNT_NAME) {
  Write-Host 'predown: nothing was provisioned in this environment; nothing to clean up'
  exit 0
}
foreach ($name in @('AOAI_SUBSCRIPTION_ID', 'AOAI_RESOURCE_GROUP', 'AOAI_ACCOUNT_ID', 'OWNER_TAG')) {
  if (-not [Environment]::GetEnvironmentVariable($name)) {
    Write-Error "predown: $name is not set"
    exit 1
  }
}

# 1. Stop the app (it may already be gone after a half-finished `azd down`).
if ($env:AZURE_FUNCTION_APP_NAME) {
  az functionapp show --resource-group $env:RESOURCE_GROUP --name $env:AZURE_FUNCTION_APP_NAME --output none 2>$null
  if ($LASTEXITCODE -eq 0) {
    az functionapp stop --resource-group $env:RESOURCE_GROUP --name $env:AZURE_FUNCTION_APP_NAME --output none
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    Write-Host "predown: stopped $($env:AZURE_FUNCTION_APP_NAME)"
  }
}

# 2. The app's deployments (az rest with an explicit api-version, so that tags are returned).
$errors = az resource show --ids $env:AOAI_ACCOUNT_ID --output none 2>&1
if ($LASTEXITCODE -ne 0) {
  if ("$errors" -match 'ResourceNotFound|ResourceGroupNotFound') {
    Write-Host "predown: $($env:AOAI_ACCOUNT_NAME) no longer exists; no deployment to delete"
    exit 0
  }
  Write-Error "predown: cannot read $($env:AOAI_ACCOUNT_NAME): $errors"
  exit 1
}
# Filtered here rather than with --query: a JMESPath key with a hyphen needs inner quotes,
# which do not survive the trip through az.cmd on Windows.
$listed = az rest --method get --url "$($env:AOAI_ACCOUNT_ID)/deployments?api-version=2024-10-01" --output json
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
$owned = @(($listed | Out-String | ConvertFrom-Json).value |
    Where-Object { $_.tags -and $_.tags.'managed-by' -eq $env:OWNER_TAG } |
    ForEach-Object { $_.name })
if ($owned.Count -eq 0) {
  Write-Host "predown: no deployment tagged managed-by=$($env:OWNER_TAG) on $($env:AOAI_ACCOUNT_NAME)"
}
foreach ($deployment in $owned) {
  Write-Host "predown: deleting deployment $deployment (managed-by=$($env:OWNER_TAG)) on $($env:AOAI_ACCOUNT_NAME)"
  az cognitiveservices account deployment delete --subscription $env:AOAI_SUBSCRIPTION_ID `
    --resource-group $env:AOAI_RESOURCE_GROUP --name $env:AOAI_ACCOUNT_NAME `
    --deployment-name $deployment --output none
  if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}

# 3. The identity's role assignments on the account.
if ($env:AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID) {
  $assignments = @(az role assignment list --scope $env:AOAI_ACCOUNT_ID --fill-principal-name false `
      --query "[?principalId=='$($env:AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID)'].id" --output tsv)
  if ($assignments | Where-Object { $_ }) {
    az role assignment delete --ids @($assignments | Where-Object { $_ }) --output none
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    Write-Host "predown: removed the app identity's role assignments on $($env:AOAI_ACCOUNT_NAME)"
  }
}
