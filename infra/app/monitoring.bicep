// Log Analytics workspace and the workspace-based Application Insights component.
// Local (key-based) authentication is off on both: the function app sends telemetry with its
// managed identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING plus the Monitoring Metrics
// Publisher role assigned in rbac.bicep), so the connection string alone lets nobody ingest.

param logAnalyticsName string
param applicationInsightsName string
param location string
param tags object = {}
@description('Days Log Analytics keeps the app\'s logs and telemetry.')
param retentionInDays int = 30

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      // Nothing here sends with the workspace's shared key; ingestion is through App Insights.
      disableLocalAuth: true
    }
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    DisableLocalAuth: true
  }
}

output applicationInsightsName string = applicationInsights.name
// Not a secret: with local authentication off, ingesting needs an Entra token as well.
output connectionString string = applicationInsights.properties.ConnectionString
output logAnalyticsName string = logAnalytics.name
