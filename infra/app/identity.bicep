// The function app's user-assigned managed identity. User-assigned (not system-assigned) so
// its principal exists before the app does: role assignments and the identity-based storage
// settings can then be made in the same deployment, and the identity survives re-creating the
// app.

param name string
param location string
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output resourceId string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
