export {
  API_KEY_SCOPES,
  type ApiKeyEntry,
  ApiKeyRing,
  type ApiKeyScope,
  ApiKeysFileError,
  apiKeyNames,
  formatApiKeyLine,
  generateApiKey,
  hashApiKey,
  parseApiKeys,
  withoutApiKey,
} from './api-keys.js';
export { apiKeysFileProblems, readApiKeysFile, type WatchApiKeysOptions, watchApiKeysFile } from './keys-file.js';
