// Roles on the Azure OpenAI account, deployed at the account's resource group (which may be
// another one than the app's) and scoped to the account itself: the narrowest scope Azure offers
// for these roles, since a deployment is not a role-assignment scope. Also reports the account's
// data-plane endpoint for the AOAI_ENDPOINT app setting.
//
// What the app does on the account, and so what its role must allow:
//   Microsoft.CognitiveServices/accounts/read                    (the account, its endpoint)
//   Microsoft.CognitiveServices/accounts/deployments/read         (state, listing for room)
//   Microsoft.CognitiveServices/accounts/deployments/write        (create on demand)
//   Microsoft.CognitiveServices/accounts/deployments/delete       (delete when idle)
//   Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action (inference)
// Cognitive Services OpenAI Contributor holds all of these and cannot list or regenerate keys,
// turn key authentication back on, or delete the account that holds the fine-tuned models,
// which Cognitive Services Contributor (Microsoft.CognitiveServices/*) could.
//
// Because this module is a nested deployment in the account's resource group, whoever runs
// `azd provision` needs Microsoft.Resources/deployments/write THERE (Contributor, or any role
// with it, on that group) besides the right to assign roles on the account (Owner, User Access
// Administrator or Role Based Access Control Administrator): User Access Administrator alone
// cannot create the nested deployment.

param accountName string
param identityPrincipalId string

@description('Role that lets the app create, delete and call deployments. CognitiveServicesOpenAIContributor by default; CognitiveServicesContributor (broader: keys, the account itself) only if your policy requires it, in which case OpenAI User is added for inference, which that role lacks.')
@allowed(['CognitiveServicesOpenAIContributor', 'CognitiveServicesContributor'])
param deploymentManagerRole string = 'CognitiveServicesOpenAIContributor'

@description('Object id of the person or pipeline running azd: gets the same role as the app, for the `hosting` command (status, up, down); empty: none.')
param operatorPrincipalId string = ''
@allowed(['User', 'ServicePrincipal', 'Group'])
param operatorPrincipalType string = 'User'

// Cognitive Services OpenAI Contributor: deployments read/write/delete and inference, no keys.
var cognitiveServicesOpenAIContributor = 'a001fd3d-188f-4b5d-821b-7da978bf7442'
// Cognitive Services Contributor: all of Microsoft.CognitiveServices/* (keys, the account).
var cognitiveServicesContributor = '25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68'
// Data-plane inference only; needed beside Cognitive Services Contributor, which has no
// data actions.
var cognitiveServicesOpenAIUser = '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd'

var managerRoleId = deploymentManagerRole == 'CognitiveServicesOpenAIContributor' ? cognitiveServicesOpenAIContributor : cognitiveServicesContributor
var needsInferenceRole = deploymentManagerRole == 'CognitiveServicesContributor'

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = {
  name: accountName
}

resource deploymentManager 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, identityPrincipalId, managerRoleId)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', managerRoleId)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource inference 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (needsInferenceRole) {
  name: guid(account.id, identityPrincipalId, cognitiveServicesOpenAIUser)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', cognitiveServicesOpenAIUser)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The README's operator runs `hosting status|up|down` with their own sign-in: the same actions
// as the app, so the same role.
resource operator 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(account.id, operatorPrincipalId, cognitiveServicesOpenAIContributor)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', cognitiveServicesOpenAIContributor)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}

output accountId string = account.id
// <subdomain>.openai.azure.com serves the OpenAI data plane for both OpenAI and AIServices
// accounts; token authentication needs the custom subdomain, so it is always set.
output endpoint string = 'https://${account.properties.customSubDomainName}.openai.azure.com/'
