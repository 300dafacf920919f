// An Azure OpenAI account, created only when main.bicep's createOpenAiAccount is true (for a
// fresh environment; normally the fine-tuned model lives in an existing account). Keys are
// off: the app calls it with its identity, so nothing here produces a secret.

param name string
param location string
param tags object = {}

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  name: name
  location: location
  tags: tags
  kind: 'OpenAI'
  sku: {
    name: 'S0'
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    // A custom subdomain is required for Entra ID (token) authentication.
    customSubDomainName: name
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
  //checkov:skip=CKV_AZURE_134:Public network access stays on: the Flex Consumption app has no VNet in this template; access needs an Entra token and a role on this account (local auth is off).
}

output name string = account.name
