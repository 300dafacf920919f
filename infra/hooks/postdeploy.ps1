# azd postdeploy hook: subscribe the blob trigger to the storage account's blob-created events.
#
# The same steps as postdeploy.sh (read its comments): wait for the blobs extension's system
# key, then create (or update) the Event Grid subscription from the storage account's system
# topic to the blobs webhook, filtered to Microsoft.Storage.BlobCreated under the input
# container. The key is never printed.
$ErrorActionPreference = 'Stop'

foreach ($tool in @('az', 'azd')) {
  if (-not (Get-Command $tool -ErrorAction SilentlyContinue)) {
    Write-Error "postdeploy: '$tool' is not installed (see README.md, Deploy to Azure)"
    exit 1
  }
}

# azd passes its environment's values to hooks; load them too when the hook is run by hand.
if (-not $env:AZURE_FUNCTION_APP_NAME) {
  foreach ($line in (& azd env get-values)) {
    if ($line -match '^([^=]+)=(.*)$') {
      [Environment]::SetEnvironmentVariable($Matches[1], ($Matches[2] -replace '^"|"$', ''))
    }
  }
}

foreach ($name in @('RESOURCE_GROUP', 'AZURE_FUNCTION_APP_NAME', 'AZURE_FUNCTION_APP_HOSTNAME',
    'BLOB_TRIGGER_FUNCTION_NAME', 'EVENTGRID_SYSTEM_TOPIC_NAME', 'INPUT_CONTAINER_NAME',
    'AZURE_STORAGE_ACCOUNT_ID', 'DEAD_LETTER_CONTAINER_NAME')) {
  if (-not [Environment]::GetEnvironmentVariable($name)) {
    Write-Error "postdeploy: $name is not set: run azd provision first"
    exit 1
  }
}

# The key appears when the host first starts with the blob extension.
$key = ''
for ($attempt = 1; $attempt -le 20; $attempt++) {
  $key = az functionapp keys list --resource-group $env:RESOURCE_GROUP `
    --name $env:AZURE_FUNCTION_APP_NAME --query 'systemKeys.blobs_extension' `
    --output tsv 2>$null
  if ($key) { break }
  Write-Host "postdeploy: waiting for the host to start (attempt $attempt of 20)"
  Start-Sleep -Seconds 15
}
if (-not $key) {
  Write-Error ("postdeploy: no blobs_extension key on $env:AZURE_FUNCTION_APP_NAME after 5 minutes; " +
    'check the app''s logs, then run: azd hooks run postdeploy')
  exit 1
}

$endpoint = "https://$($env:AZURE_FUNCTION_APP_HOSTNAME)/runtime/webhooks/blobs?functionName=Host.Functions.$($env:BLOB_TRIGGER_FUNCTION_NAME)&code=$key"
$subjectPrefix = "/blobServices/default/containers/$($env:INPUT_CONTAINER_NAME)/blobs/"

# Quoted again for the native command: an unquoted & would end the az command line on Windows.
az eventgrid system-topic event-subscription create `
  --name "$($env:INPUT_CONTAINER_NAME)-blob-created" `
  --resource-group $env:RESOURCE_GROUP `
  --system-topic-name $env:EVENTGRID_SYSTEM_TOPIC_NAME `
  --endpoint-type webhook `
  --endpoint "`"$endpoint`"" `
  --included-event-types Microsoft.Storage.BlobCreated `
  --subject-begins-with $subjectPrefix `
  --max-delivery-attempts 30 `
  --event-ttl 1440 `
  --deadletter-identity systemassigned `
  --deadletter-identity-endpoint "$($env:AZURE_STORAGE_ACCOUNT_ID)/blobServices/default/containers/$($env:DEAD_LETTER_CONTAINER_NAME)" `
  --output none
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }

Write-Host "postdeploy: blobs created under $($env:INPUT_CONTAINER_NAME)/ now trigger $($env:BLOB_TRIGGER_FUNCTION_NAME)"
