import { loadConfig } from "./config";
import { modelRegistry } from "./program";

// The stack's config, checked before anything is created; then the registry's repository and the
// version's image, built here or promoted by digest from another stack (program.ts).
const stack = modelRegistry(loadConfig());

export const registry = stack.registry;
export const registry_api_url = stack.registry_api_url;
export const repository_uri = stack.repository_uri;
export const repository_name = stack.repository_name;
export const model_version = stack.model_version;
export const image_uri = stack.image_uri;
export const image_ref = stack.image_ref;
export const model_sha256 = stack.model_sha256;
export const published_versions = stack.published_versions;
export const published_by_repository = stack.published_by_repository;
export const registry_login = stack.registry_login;
