// The function app's roles on the Azure OpenAI account, deployed at the account's resource group
// (which may be another one than the app's) and scoped to the account itself: the narrowest
// scope Azure offers for these roles, since a deployment is not a role-assignment scope.
// Also reports the account's data-plane endpoint for the AOAI_ENDPOINT app setting.

param accountName string
param identityPrincipalId string

@description('Role that creates and deletes deployments; see the comments below.')
@allowed(['CognitiveServicesContributor', 'CognitiveServicesOpenAIContributor'])
param deploymentManagerRole string = 'CognitiveServicesContributor'

// Cognitive Services Contributor: management of the account (Microsoft.CognitiveServices/*),
// which certainly includes accounts/deployments/write and /delete. The default, because the
// whole point of the app is deleting the billed deployment: a role that can create but not
// delete would leave it up, billed every hour. It can also list the account's keys, which is
// why a created account has local auth off, and why an existing one should too.
var cognitiveServicesContributor = '25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68'
// Cognitive Services OpenAI Contributor: deployments and fine-tuning without key access, but
// whether it covers deleting a deployment is unconfirmed (shared/azure-facts.md). Opt in with
// deploymentManagerRole once a delete has been seen to succeed with it.
var cognitiveServicesOpenAIContributor = 'a001fd3d-188f-4b5d-821b-7da978bf7442'
// Cognitive Services OpenAI User: data-plane inference (chat completions) only.
var cognitiveServicesOpenAIUser = '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd'

var managerRoleId = deploymentManagerRole == 'CognitiveServicesContributor' ? cognitiveServicesContributor : cognitiveServicesOpenAIContributor

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

resource inference 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, identityPrincipalId, cognitiveServicesOpenAIUser)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', cognitiveServicesOpenAIUser)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output accountId string = account.id
// <subdomain>.openai.azure.com serves the OpenAI data plane for both OpenAI and AIServices
// accounts; token authentication needs the custom subdomain, so it is always set.
output endpoint string = 'https://${account.properties.customSubDomainName}.openai.azure.com/'
