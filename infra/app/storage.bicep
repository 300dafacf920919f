// The one storage account: the Functions host's own storage (AzureWebJobsStorage), the app's
// documents, results, hold ledgers and job records (the DocumentStorage connection), the
// deployment package, and the queues. Shared-key access is off, so every client, the host
// included, authenticates with Entra ID (identity-based connections, see functions.bicep);
// no connection string with a key exists anywhere.
//
// Also the Event Grid system topic for the blob trigger's Event Grid source: the topic lives
// here with the account it watches. Its subscription to the function's blobs webhook needs the
// blobs extension's system key, which exists only once the code is deployed and the host has
// started, so infra/hooks/postdeploy.* creates it, as the azd eventgrid-blob template does.

param name string
param location string
param tags object = {}

@description('Containers to create: documents in, results out, ledgers, job records, and the deployment package.')
param containerNames array

@description('Queues to create: the job-resume queue and its poison queue, and the blob trigger\'s poison queue.')
param queueNames array

param systemTopicName string

@description('Container Event Grid dead-letters undeliverable blob events to (one of containerNames).')
param deadLetterContainerName string

@description('Log Analytics workspace that receives the system topic\'s delivery failures.')
param logAnalyticsWorkspaceName string

@description('Lifecycle rules: {name, prefix (container/path), days}: blobs under the prefix are deleted that many days after their last change.')
param lifecycleRules array

@description('Days a deleted or overwritten blob, and a deleted container, can be restored.')
param softDeleteDays int = 7

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    // Documents and results are working copies (the uploader keeps the original) and the ledger
    // holds only short-lived holds, so zone/geo redundancy is not worth its price here.
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    dnsEndpointType: 'Standard'
    // Reachable over the public endpoint with Entra ID only: Flex Consumption without a VNet,
    // Event Grid, and the operator's machine all need it (see the checkov skips below).
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    // User-delegation SAS (the only kind without shared keys) may live at most a day.
    sasPolicy: {
      sasExpirationPeriod: '1.00:00:00'
      expirationAction: 'Log'
    }
  }
  //checkov:skip=CKV_AZURE_35:Default network action Allow: Flex Consumption here has no VNet integration, so the app, Event Grid and the operator reach storage over the public endpoint; shared keys are off, so every request needs an Entra token and a data role.
  //checkov:skip=CKV_AZURE_59:Public network access stays on for the same reason (no VNet, no private endpoint in this template); access is Entra-only.
  //checkov:skip=CKV_AZURE_206:LRS on purpose: documents and results are working copies (uploaders keep the originals) and the ledger holds only short-lived holds; geo-replication would double the storage cost for data that matters for hours.
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    // Overwrites of the small ledger and job-record blobs keep soft-deleted snapshots for these
    // days too: a few KB each, accepted for being able to restore a deleted document or result.
    deleteRetentionPolicy: {
      enabled: true
      days: softDeleteDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: softDeleteDays
    }
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for containerName in containerNames: {
    parent: blobService
    name: containerName
    properties: {
      publicAccess: 'None'
    }
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queueName in queueNames: {
    parent: queueService
    name: queueName
  }
]

// Blob-created events of this account, for the blob trigger's Event Grid source. The
// subscription (filter: Microsoft.Storage.BlobCreated under the input container) is made by the
// postdeploy hook, since its webhook URL carries the blobs extension key.
resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: systemTopicName
  location: location
  tags: tags
  // Its own identity writes undeliverable events to the dead-letter container: shared keys are
  // off, so Event Grid needs a data role like any other client.
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

// Storage Blob Data Contributor, on the dead-letter container only.
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: deadLetterContainerName
}

resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, systemTopic.id, storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: systemTopic.identity.principalId
    principalType: 'ServicePrincipal'
  }
  dependsOn: [
    containers
  ]
}

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: logAnalyticsWorkspaceName
}

// Delivery failures and dead-lettered events show in Log Analytics (AegDeliveryFailureLogs,
// AegDataPlaneRequests) and in the topic's metrics: what to look at when uploads do nothing.
resource systemTopicDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: systemTopic
  properties: {
    workspaceId: logAnalytics.id
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

// Storage grows without limit otherwise: every version's outcome, every job record, batch run
// records and parked jobs' copies stay for ever. Current outcomes (<name>.result.json) and the
// hold ledgers are not expired: they are what users and the app read.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    policy: {
      rules: [
        for rule in lifecycleRules: {
          name: rule.name
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                rule.prefix
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: rule.days
                }
              }
              snapshot: {
                delete: {
                  daysAfterCreationGreaterThan: rule.days
                }
              }
            }
          }
        }
      ]
    }
  }
}

output name string = storage.name
output resourceId string = storage.id
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output systemTopicName string = systemTopic.name
