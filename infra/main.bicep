// On-demand hosting for fine-tuned Azure OpenAI models: everything `azd up` provisions.
//
// A resource group with a Flex Consumption function app (Python 3.11) running as a
// user-assigned managed identity; one storage account (shared keys off) for the host, the
// documents and the hold ledger; an Event Grid system topic for the blob trigger; Application
// Insights on a Log Analytics workspace (local auth off); and role assignments, each on the one
// resource it concerns. The Azure OpenAI account holding the fine-tuned model is an existing
// account (name + resource group parameters) or, when createOpenAiAccount is true, a new one.
//
// Layout and habits follow the azd Flex Consumption quickstarts (names from abbreviations.json
// and a resourceToken, modules under app/), with plain resources instead of registry modules so
// that checkov (`make infra-check`) and the settings test can read every property offline.

targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; with the subscription and location it makes the resourceToken in every resource name.')
param environmentName string

@minLength(1)
@description('Region of the app\'s resources: one that offers Flex Consumption (the list of the azd Flex Consumption quickstarts; `az functionapp list-flexconsumption-locations` gives the current one). The Azure OpenAI account may be elsewhere.')
@allowed([
  'australiaeast'
  'australiasoutheast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'southindia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'ukwest'
  'westcentralus'
  'westeurope'
  'westus'
  'westus2'
  'westus3'
])
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group to create; empty: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Object id of whoever runs azd: gets blob and queue data access on the storage account for test uploads and `hosting status`. Empty: none.')
param principalId string = ''

@allowed(['User', 'ServicePrincipal', 'Group'])
param principalType string = 'User'

// --- The Azure OpenAI account -----------------------------------------------------------------

@description('Create a new Azure OpenAI account instead of using an existing one (a fine-tuned model must then be trained or copied into it).')
param createOpenAiAccount bool = false

@description('Name of the Azure OpenAI account holding the fine-tuned model. Required unless createOpenAiAccount; when creating, empty means oai-<resourceToken>.')
param openAiAccountName string = ''

@description('Resource group of the existing Azure OpenAI account; empty: the app\'s resource group.')
param openAiResourceGroupName string = ''

@description('Subscription of the existing Azure OpenAI account; empty: this deployment\'s subscription.')
param openAiSubscriptionId string = ''

@description('Region of a created Azure OpenAI account (fine-tuned model hosting is offered in a few regions only); empty: location.')
param openAiLocation string = ''

@description('Data-plane endpoint override; empty: https://<custom subdomain>.openai.azure.com/.')
param openAiEndpoint string = ''

@description('Role that lets the app create, delete and call deployments: CognitiveServicesOpenAIContributor (no key access); see app/openai-access.bicep.')
@allowed(['CognitiveServicesOpenAIContributor', 'CognitiveServicesContributor'])
param deploymentManagerRole string = 'CognitiveServicesOpenAIContributor'

@description('Give whoever runs azd (principalId) the roles of the README\'s operator: Cognitive Services OpenAI Contributor on the account (for `hosting status|up|down`), blob and queue data on the storage account.')
param grantOperatorRoles bool = true

// --- The hosted models the app creates and deletes deployments of ---------------------------
// Either a hosted-models file deployed with the app (several models; see hosting.example.toml),
// or the single-model parameters below. Exactly one of the two must be given.

@description('Path of the hosted-models TOML file in the deployed package, e.g. hosting.toml; empty: the single-model parameters below.')
param hostingConfigFile string = ''

@description('Single-model form: the fine-tuned model id to deploy, e.g. gpt-4.1-mini-2025-04-14.ft-<job id>; empty when hostingConfigFile is set.')
param fineTunedModel string = ''

param fineTunedModelVersion string = '1'

@description('Name of the deployment the app creates and deletes.')
param deploymentName string = 'ft-on-demand'

@allowed(['Standard', 'GlobalStandard', 'DeveloperTier', 'ProvisionedManaged'])
param deploymentSku string = 'Standard'

@minValue(1)
@description('Capacity units of the deployment (1 unit = 1,000 tokens and 6 requests per minute); needs that much free quota.')
param deploymentCapacity int = 10

@description('Value of the managed-by tag on deployments the app creates; only those are ever deleted (by the app and by the predown hook).')
param ownerTag string = 'on-demand-hosting'

@description('Processing profiles (a JSON object, see README); empty: the built-in default profile.')
param processingProfiles string = ''

param defaultProfile string = 'default'

@description('The fine-tuned model\'s context window in tokens.')
param modelContextTokens int = 128000

@minValue(0)
@description('Idle time after the last hold before the deployment is deleted; 0 deletes after each document.')
param idleGraceSeconds int = 300

@description('NCRONTAB schedule of the reaper timer (UTC).')
param reaperSchedule string = '0 * * * * *'

@description('NCRONTAB schedule of the schedules reconciler timer (UTC); windows are evaluated in their own time zones in code.')
param scheduleReconcileSchedule string = '0 * * * * *'

// --- Retention (storage lifecycle rules) ------------------------------------------------------

@minValue(1)
@description('Days each version\'s own outcome (versions/ in the output container) is kept after it was written.')
param outcomeVersionsRetentionDays int = 90

@minValue(1)
@description('Days a job record (GET /api/jobs/{id}, `hosting job`) is kept after its last change.')
param jobRecordsRetentionDays int = 30

@minValue(1)
@description('Days a parked job\'s copy of its document (payloads/ in the jobs container) is kept; a job is final long before.')
param payloadsRetentionDays int = 7

@minValue(1)
@description('Days batch run records and summaries are kept.')
param batchRunsRetentionDays int = 90

@minValue(1)
@description('Days an undeliverable blob event is kept in the dead-letter container.')
param deadLetterRetentionDays int = 30

// --- Names -------------------------------------------------------------------------------------

param inputContainerName string = 'documents-in'
param outputContainerName string = 'documents-out'
param ledgerContainerName string = 'deployment-ledger'
param jobsContainerName string = 'jobs'
@description('Queue on which a job that found the deployment cold waits (with a visibility delay) to be resumed.')
param jobResumeQueueName string = 'job-resumes'
@description('Container batch runs read their documents from (a prefix per run); the blob trigger never sees it.')
param batchContainerName string = 'batch-in'
@description('Container batch runs write their outcomes to (never OUTPUT_CONTAINER: ad-hoc outcomes may take any name there).')
param batchOutputContainerName string = 'batch-out'
@description('Container of batch run records, summaries and lists of documents left at a deadline.')
param batchRunsContainerName string = 'batch-runs'
@description('Container of model evaluations (runs, per-example answers, reports) and promotions.')
param evaluationsContainerName string = 'evaluations'
@description('Queue through which a batch run continues in its next invocation (continue_batch).')
param batchQueueName string = 'batch-continuations'
@description('Container of the hosting log: one append blob per hosted model and UTC day, read by the savings report.')
param hostingLogContainerName string = 'hosting-log'
@description('Container Event Grid writes blob events to when it cannot deliver them (after 24 hours of retries).')
param deadLetterContainerName string = 'eventgrid-deadletter'

var abbrs = loadJsonContent('./abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }

var functionAppName = '${abbrs.webSitesFunctions}${resourceToken}'
// Flex Consumption reads the app's package from this container (azd uploads it there).
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'
var blobTriggerFunctionName = 'process_uploaded_document'

var openAiSubscription = empty(openAiSubscriptionId) ? subscription().subscriptionId : openAiSubscriptionId
var openAiAccount = empty(openAiAccountName) ? '${abbrs.cognitiveServicesOpenAI}${resourceToken}' : openAiAccountName
var openAiRegion = empty(openAiLocation) ? location : openAiLocation
var openAiResourceGroup = createOpenAiAccount || empty(openAiResourceGroupName) ? rg.name : openAiResourceGroupName

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: empty(resourceGroupName) ? '${abbrs.resourcesResourceGroups}${environmentName}' : resourceGroupName
  location: location
  tags: tags
}

module identity './app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}${functionAppName}'
    location: location
    tags: tags
  }
}

module monitoring './app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
  }
}

module storage './app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    containerNames: [
      inputContainerName
      outputContainerName
      ledgerContainerName
      jobsContainerName
      batchContainerName
      batchOutputContainerName
      batchRunsContainerName
      hostingLogContainerName
      deadLetterContainerName
      evaluationsContainerName
      deploymentContainerName
    ]
    queueNames: [
      jobResumeQueueName
      '${jobResumeQueueName}-poison'
      batchQueueName
      '${batchQueueName}-poison'
      // The blob trigger's poison queue (after 5 failed deliveries); made up front so that
      // monitoring can watch it before the first failure.
      'webjobs-blobtrigger-poison'
    ]
    systemTopicName: '${abbrs.eventGridSystemTopics}${resourceToken}'
    deadLetterContainerName: deadLetterContainerName
    logAnalyticsWorkspaceName: monitoring.outputs.logAnalyticsName
    lifecycleRules: [
      { name: 'outcome-versions', prefix: '${outputContainerName}/versions/', days: outcomeVersionsRetentionDays }
      { name: 'job-records', prefix: '${jobsContainerName}/', days: jobRecordsRetentionDays }
      { name: 'job-payloads', prefix: '${jobsContainerName}/payloads/', days: payloadsRetentionDays }
      { name: 'batch-runs', prefix: '${batchRunsContainerName}/', days: batchRunsRetentionDays }
      { name: 'dead-letters', prefix: '${deadLetterContainerName}/', days: deadLetterRetentionDays }
    ]
  }
}

module openAi './app/openai.bicep' = if (createOpenAiAccount) {
  name: 'openai'
  scope: rg
  params: {
    name: openAiAccount
    location: openAiRegion
    tags: tags
  }
}

module openAiAccess './app/openai-access.bicep' = {
  // Deployed into the account's resource group, which other environments may share: a name of
  // this environment's own keeps their deployment records apart. Being a deployment THERE, it
  // needs Microsoft.Resources/deployments/write on that group from whoever provisions
  // (Contributor on it), besides the right to assign roles on the account (see the README).
  name: 'openai-access-${resourceToken}'
  scope: resourceGroup(openAiSubscription, openAiResourceGroup)
  params: {
    accountName: openAiAccount
    identityPrincipalId: identity.outputs.principalId
    deploymentManagerRole: deploymentManagerRole
    operatorPrincipalId: grantOperatorRoles ? principalId : ''
    operatorPrincipalType: principalType
  }
  dependsOn: [
    openAi
  ]
}

module rbac './app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    identityPrincipalId: identity.outputs.principalId
    userPrincipalId: grantOperatorRoles ? principalId : ''
    userPrincipalType: principalType
  }
}

// Every setting the app reads (AppSettings in shared/settings.py, by alias), except the
// DocumentStorage connection, whose identity-based form functions.bicep adds with the host's.
// tests/unit/test_infra.py checks that none is missing. No value is a secret.
var appSettings = {
  AZURE_AUTH_MODE: 'identity'
  // DefaultAzureCredential picks the user-assigned identity by this client id.
  AZURE_CLIENT_ID: identity.outputs.clientId
  AZURE_SUBSCRIPTION_ID: openAiSubscription
  AZURE_RESOURCE_GROUP: openAiResourceGroup
  AOAI_ACCOUNT_NAME: openAiAccount
  ARM_ENDPOINT: environment().resourceManager
  AOAI_ENDPOINT: empty(openAiEndpoint) ? openAiAccess.outputs.endpoint : openAiEndpoint
  AOAI_API_VERSION: '2024-10-21'
  // Deliberately empty: the app calls Azure OpenAI with a bearer token from its identity.
  // Setting it here also clears a key someone pasted into the portal, at the next provision.
  AOAI_API_KEY: ''
  AZURE_CA_BUNDLE: ''
  DEPLOYMENT_NAME: deploymentName
  FINE_TUNED_MODEL: fineTunedModel
  FINE_TUNED_MODEL_VERSION: fineTunedModelVersion
  DEPLOYMENT_SKU: deploymentSku
  DEPLOYMENT_CAPACITY: string(deploymentCapacity)
  OWNER_TAG: ownerTag
  INPUT_CONTAINER: inputContainerName
  OUTPUT_CONTAINER: outputContainerName
  LEDGER_CONTAINER: ledgerContainerName
  JOBS_CONTAINER: jobsContainerName
  IDLE_GRACE_SECONDS: string(idleGraceSeconds)
  JOB_HOLD_SECONDS: '600'
  PROVISION_TIMEOUT_SECONDS: '1200'
  READINESS_TIMEOUT_SECONDS: '600'
  MANAGEMENT_POLL_SECONDS: '15'
  MAX_DEPLOYMENT_LIFETIME_SECONDS: '50400'
  OPERATION_LEASE_SECONDS: '120'
  CREATE_ATTEMPTS: '3'
  NOT_FOUND_RETRY_SECONDS: '60'
  REAPER_SCHEDULE: reaperSchedule
  SCHEDULE_RECONCILE_SCHEDULE: scheduleReconcileSchedule
  // Under host.json's functionTimeout (30 min), so the job, not the host, decides at the limit.
  JOB_TIMEOUT_SECONDS: '1680'
  MAX_JOB_ATTEMPTS: '5'
  INFERENCE_MAX_ATTEMPTS: '20'
  INFERENCE_MAX_SECONDS: '300'
  INFERENCE_TIMEOUT_SECONDS: '120'
  THROTTLE_PARK_SECONDS: '10'
  PROCESSING_PROFILES: processingProfiles
  DEFAULT_PROFILE: defaultProfile
  MODEL_CONTEXT_TOKENS: string(modelContextTokens)
  MAX_DOCUMENT_BYTES: '2000000'
  MAX_CHUNKS: '40'
  MAX_SUBMIT_BYTES: '2500000'
  TIKTOKEN_ENCODING: 'o200k_base'
  // The TOML file deployed with the app that declares the hosted models (or empty).
  HOSTING_CONFIG_FILE: hostingConfigFile
  ACCOUNT_MAX_FINE_TUNED_DEPLOYMENTS: '5'
  RESUME_QUEUE: jobResumeQueueName
  EXPECTED_PROVISION_SECONDS: '300'
  PARK_MAX_SECONDS: '300'
  SWEEP_GRACE_SECONDS: '60'
  // host.json extensions.queues.maxDequeueCount
  RESUME_MAX_DEQUEUE_COUNT: '5'
  // The intake sweep: an input blob with no job this long after upload lost its event.
  INTAKE_GRACE_SECONDS: '600'
  INTAKE_SWEEP_PAGE_SIZE: '1000'
  BATCH_CONTAINER: batchContainerName
  BATCH_OUTPUT_CONTAINER: batchOutputContainerName
  BATCH_RUNS_CONTAINER: batchRunsContainerName
  EVALUATIONS_CONTAINER: evaluationsContainerName
  BATCH_QUEUE: batchQueueName
  HOSTING_LOG_CONTAINER: hostingLogContainerName
  // Azure seconds per second of the app's clock: 1 in Azure (the local simulator runs faster).
  COST_TIME_SCALE: '1'
  BATCH_HOLD_SECONDS: '600'
  // Well under host.json's functionTimeout (30 min): a run continues in a new invocation.
  BATCH_SLICE_SECONDS: '600'
  BATCH_PAGE_SIZE: '100'
  BATCH_CONCURRENCY: '8'
  BATCH_DOCUMENT_ATTEMPTS: '3'
  RATE_LIMIT_MINUTE_SECONDS: '60'
}

module functions './app/functions.bicep' = {
  name: 'functions'
  scope: rg
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    identityResourceId: identity.outputs.resourceId
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    appSettings: appSettings
  }
  // The host starts as soon as the app exists: let it find its storage and telemetry roles.
  dependsOn: [
    rbac
  ]
}

// Read by the azd hooks (infra/hooks) and by the README's commands.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functions.outputs.name
output AZURE_FUNCTION_APP_HOSTNAME string = functions.outputs.defaultHostName
output AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output BLOB_TRIGGER_FUNCTION_NAME string = blobTriggerFunctionName
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output INPUT_CONTAINER_NAME string = inputContainerName
output OUTPUT_CONTAINER_NAME string = outputContainerName
output EVENTGRID_SYSTEM_TOPIC_NAME string = storage.outputs.systemTopicName
output AOAI_SUBSCRIPTION_ID string = openAiSubscription
output AOAI_RESOURCE_GROUP string = openAiResourceGroup
output AOAI_ACCOUNT_NAME string = openAiAccount
output AOAI_ACCOUNT_ID string = openAiAccess.outputs.accountId
output OWNER_TAG string = ownerTag
output DEAD_LETTER_CONTAINER_NAME string = deadLetterContainerName
output AZURE_STORAGE_ACCOUNT_ID string = storage.outputs.resourceId
