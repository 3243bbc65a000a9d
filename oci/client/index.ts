export { Authenticator, type ChallengeContext } from './auth.js';
export {
  authKeyFor, decodeAuthEntry, defaultDockerConfigPath, DOCKER_HUB_AUTH_KEY, findHostKey, keyMatchesHost, readAuthFile,
  removeCredentials, saveCredentials, type AuthFile, type AuthFileEntry, type DecodedAuth,
} from './auth-file.js';
export { blobName, blobPath, getBlob, headBlob, type GetBlobOptions } from './blobs.js';
export { parseWwwAuthenticate, type AuthChallenge } from './challenge.js';
export { runCredentialHelper, type HelperCredential } from './cred-helper.js';
export {
  credentialFiles, lookupCredentials, type CredentialFile, type CredentialLookupOptions, type RegistryCredential,
} from './credentials.js';
export {
  errorFromBody, errorStatus, parseErrorBody, registryError,
  type RegistryErrorContext, type RegistryErrorDetail, type RegistryErrorEntry,
} from './errors.js';
export {
  deleteManifest, getManifest, headManifest, manifestName, putManifest,
  type GetManifestOptions, type ManifestUpload, type PutManifestResult,
} from './manifests.js';
export {
  addFallbackReferrer, fallbackReferrers, listReferrers, referrerDescriptor, referrersTag, type ReferrersFilter,
} from './referrers.js';
export { RegistryClient, type RegistryClientOptions } from './registry-client.js';
export { openRegistryTarget, RegistryTarget, type RegistryTargetOptions } from './registry-target.js';
export { CATALOG_SCOPE, repositoryScope, scopeKey, scopesCover, type RepositoryAccess } from './scope.js';
export { listCatalog, listTags, parseLinkNext, type ListOptions } from './tags.js';
export {
  backoffDelay, DEFAULT_USER_AGENT, isRetryableNetworkError, isRetryableStatus, registryBaseUrl, Transport,
  type HttpMethod, type RequestBody, type RequestEvent, type TransportOptions, type TransportRequest,
} from './transport.js';
export { mountBlob, uploadBlob, type BlobSource, type UploadOptions, type UploadOutcome } from './uploads.js';
