// The Flex Consumption plan and the function app (Python 3.11, Linux), running as the
// user-assigned identity, with every app setting it reads.
//
// Settings come in two parts: `appSettings` (the app's own settings, built in main.bicep from
// the parameters) and the connection settings made here from the storage account and
// Application Insights. All connections are identity-based: `<CONNECTION>__blobServiceUri`,
// `__queueServiceUri`, `__credential=managedidentity` and `__clientId`; no key or connection
// string with a secret is set. Flex Consumption sets the runtime in functionAppConfig and
// refuses FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION as app settings, so neither is here.

param name string
param planName string
param location string
param tags object = {}

@description('azd service name in azure.yaml; azd finds the app to deploy by this tag.')
param serviceName string = 'functions'

param identityResourceId string
param identityClientId string

param storageAccountName string
param deploymentContainerName string
param applicationInsightsName string

@description('The app\'s own settings (AppSettings in shared/settings.py, plus HOSTING_CONFIG_FILE).')
param appSettings object

@description('Memory per instance (MB): 2048 or 4096 on Flex Consumption.')
@allowed([2048, 4096])
param instanceMemoryMB int = 2048

@description('Upper bound on instances. 40 is the Flex minimum for this setting: the work is bounded by one deployment\'s tokens per minute, and fewer instances race less on the hold ledger.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// The Functions host's storage and the app's DocumentStorage connection, both identity-based on
// the same account. Queue URIs too: the blob trigger's poison queue and the job-resume queue.
var connectionSettings = {
  AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
  AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  DocumentStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
  DocumentStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
  DocumentStorage__credential: 'managedidentity'
  DocumentStorage__clientId: identityClientId
}

// Telemetry authenticated with the identity (App Insights has local authentication off).
var monitoringSettings = {
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

// Set with the site (not as a separate config resource) so that the host's first start already
// finds its storage connection.
var allSettings = union(appSettings, connectionSettings, monitoringSettings)

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true // Linux
  }
  //checkov:skip=CKV_AZURE_225:Zone redundancy for Flex Consumption is offered in some regions only; a zone outage delays documents (they stay in storage and are delivered again), it does not lose them.
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityResourceId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // The HTTP API (function keys) and the Event Grid webhook are called from outside.
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [for setting in items(allSettings): { name: setting.key, value: setting.value }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          // azd uploads the package here; the platform reads it with the app's identity.
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityResourceId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        // Matches the Python `make test` runs on (pyproject: target py311).
        name: 'python'
        version: '3.11'
      }
    }
  }
  //checkov:skip=CKV_AZURE_17:Client certificates cannot be presented by Event Grid's webhook delivery; callers authenticate with function keys.
  //checkov:skip=CKV_AZURE_222:Public network access is needed: Event Grid delivers blob events to the webhook and the portal calls the HTTP API; there is no VNet in this template.
  //checkov:skip=CKV_AZURE_212:Flex Consumption scales to zero by design; instances kept warm for failover would bill while idle, against the purpose of an on-demand app. Work waits in storage, so a lost instance delays a document without losing it.
  //checkov:skip=CKV_AZURE_213:App Service health check pings the instances of a fixed-size plan; on Flex Consumption instances come and go with events, and the app has no health route to ping.
}

// Deployments (azd) and the operator use Entra ID; basic publishing credentials (a user name and
// password for FTP and the SCM site) would be a secret nobody needs.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
