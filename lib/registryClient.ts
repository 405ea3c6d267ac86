/**
 * A small OCI Distribution API client: does a tag exist in a repository, and what digest is behind
 * it. Speaks the standard auth flow (anonymous, HTTP Basic, and the Bearer token challenge that
 * public.ecr.aws, private ECR and most registries use), with timeouts and a bounded retry on
 * server errors and connection failures.
 *
 * Node built-ins only: the immutability guard's dynamic provider carries this module through
 * Pulumi's closure serialization.
 */
import { createHash } from "crypto";
import * as http from "http";
import * as https from "https";
import * as tls from "tls";

export interface RegistryEndpoint {
    /** Base URL of the registry API, e.g. `https://public.ecr.aws` or `http://127.0.0.1:5000`. */
    readonly apiUrl: string;
    /** Repository path inside the registry, e.g. `abc123/my-model`. */
    readonly repository: string;
    /** Credentials; without them the client asks for anonymous access. */
    readonly credentials?: { readonly username: string; readonly password: string };
    /** PEM certificate authority to trust in addition to the system's. */
    readonly caCertificate?: string;
    /** Per-request timeout. Defaults to 10 s. */
    readonly timeoutMs?: number;
    /** Retries after a server error, throttling or a connection failure. Defaults to 3. */
    readonly retries?: number;
}

export type ManifestLookup =
    | { readonly exists: false }
    | { readonly exists: true; readonly digest: string; readonly mediaType: string };

/** Why the registry could not answer; `kind` says what could help. */
export interface RegistryError extends Error {
    readonly kind: "unreachable" | "tls" | "auth" | "protocol";
}

/**
 * A plain `Error` with a kind, made by a function rather than a subclass: Pulumi's closure
 * serialization turns `super(message)` of an `Error` subclass into a call that drops the message.
 */
export function registryError(message: string, kind: RegistryError["kind"]): RegistryError {
    return Object.assign(new Error(message), { name: "RegistryError", kind });
}

const MANIFEST_MEDIA_TYPES = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

interface Response {
    readonly status: number;
    readonly headers: http.IncomingHttpHeaders;
    readonly body: Buffer;
}

/** Looks up `<repository>:<reference>` (a tag or a digest) with a HEAD request. */
export async function headManifest(
    endpoint: RegistryEndpoint,
    reference: string,
): Promise<ManifestLookup> {
    const path = `/v2/${endpoint.repository}/manifests/${encodeURIComponent(reference)}`;
    const headers = { Accept: MANIFEST_MEDIA_TYPES.join(", ") };
    let res = await authorizedRequest(endpoint, "HEAD", path, headers, "pull");
    if (res.status === 404) return { exists: false };
    if (res.status !== 200) {
        throw registryError(
            `${endpointName(endpoint)}: HEAD ${path} answered ${res.status}; expected 200 or 404`,
            "protocol",
        );
    }
    let digest = headerOf(res.headers, "docker-content-digest");
    if (!digest) {
        // Some registries leave the digest out of HEAD answers: fetch the manifest and hash it.
        res = await authorizedRequest(endpoint, "GET", path, headers, "pull");
        if (res.status !== 200) {
            throw registryError(
                `${endpointName(endpoint)}: GET ${path} answered ${res.status}`,
                "protocol",
            );
        }
        digest = `sha256:${createHash("sha256").update(res.body).digest("hex")}`;
    }
    const mediaType = headerOf(res.headers, "content-type") ?? "";
    return { exists: true, digest, mediaType };
}

/** `registry 127.0.0.1:5000, repository ml/iris`, for messages. */
function endpointName(endpoint: RegistryEndpoint): string {
    return `registry ${new URL(endpoint.apiUrl).host}, repository ${endpoint.repository}`;
}

/**
 * Sends a request, answering an auth challenge once: Basic with the credentials, or Bearer with
 * a token from the challenge's realm (with the credentials when there are any, else anonymous).
 */
export async function authorizedRequest(
    endpoint: RegistryEndpoint,
    method: string,
    path: string,
    headers: Record<string, string>,
    action: "pull" | "push,pull",
    body?: Buffer,
): Promise<Response> {
    const first = await request(endpoint, method, path, headers, body);
    if (first.status !== 401) return first;

    const challenge = parseChallenge(headerOf(first.headers, "www-authenticate") ?? "");
    let authorization: string;
    if (challenge?.scheme === "basic") {
        if (!endpoint.credentials) {
            throw registryError(
                `${endpointName(endpoint)}: the registry asks for credentials and none were given`,
                "auth",
            );
        }
        authorization = basic(endpoint.credentials);
    } else if (challenge?.scheme === "bearer") {
        authorization = `Bearer ${await fetchToken(endpoint, challenge.params, action)}`;
    } else {
        throw registryError(
            `${endpointName(endpoint)}: 401 with an auth challenge this client does not speak: ${JSON.stringify(headerOf(first.headers, "www-authenticate") ?? "")}`,
            "auth",
        );
    }
    const second = await request(
        endpoint,
        method,
        path,
        { ...headers, Authorization: authorization },
        body,
    );
    if (second.status === 401 || second.status === 403) {
        throw registryError(
            `${endpointName(endpoint)}: the registry refused the credentials (${second.status} on ${method} ${path})`,
            "auth",
        );
    }
    return second;
}

interface Challenge {
    readonly scheme: "basic" | "bearer";
    readonly params: Readonly<Record<string, string>>;
}

/** Parses `Bearer realm="...",service="...",scope="..."` (or `Basic realm="..."`). */
export function parseChallenge(header: string): Challenge | undefined {
    const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
    if (!m) return undefined;
    const scheme = m[1].toLowerCase();
    if (scheme !== "basic" && scheme !== "bearer") return undefined;
    const params: Record<string, string> = {};
    const re = /([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g;
    for (let p = re.exec(m[2]); p; p = re.exec(m[2])) {
        params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : p[3];
    }
    return { scheme, params };
}

async function fetchToken(
    endpoint: RegistryEndpoint,
    params: Readonly<Record<string, string>>,
    action: string,
): Promise<string> {
    if (!params.realm) {
        throw registryError(`${endpointName(endpoint)}: Bearer challenge without a realm`, "auth");
    }
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set("service", params.service);
    // Ask for the repository scope this request needs, as Docker's client does, plus the
    // challenge's own scope when it names another (the token spec allows several).
    const needed = `repository:${endpoint.repository}:${action}`;
    url.searchParams.append("scope", needed);
    if (params.scope && params.scope !== needed) url.searchParams.append("scope", params.scope);
    const headers: Record<string, string> = { Accept: "application/json" };
    if (endpoint.credentials) headers.Authorization = basic(endpoint.credentials);
    const res = await requestUrl(endpoint, "GET", url, headers);
    if (res.status === 401 || res.status === 403) {
        throw registryError(
            `${endpointName(endpoint)}: the token service ${url.host} refused ${endpoint.credentials ? "the credentials" : "anonymous access"} (${res.status})`,
            "auth",
        );
    }
    if (res.status !== 200) {
        throw registryError(
            `${endpointName(endpoint)}: the token service ${url.host} answered ${res.status}`,
            "auth",
        );
    }
    let token: unknown;
    try {
        const json = JSON.parse(res.body.toString("utf8"));
        token = json.token ?? json.access_token;
    } catch {
        token = undefined;
    }
    if (typeof token !== "string" || token === "") {
        throw registryError(
            `${endpointName(endpoint)}: the token service ${url.host} sent no token`,
            "auth",
        );
    }
    return token;
}

function basic(c: { username: string; password: string }): string {
    return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString("base64")}`;
}

function headerOf(headers: http.IncomingHttpHeaders, name: string): string | undefined {
    const v = headers[name];
    return Array.isArray(v) ? v[0] : v;
}

function request(
    endpoint: RegistryEndpoint,
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: Buffer,
): Promise<Response> {
    return requestUrl(endpoint, method, new URL(path, endpoint.apiUrl), headers, body);
}

/**
 * One HTTP exchange with retries: connection failures, timeouts, 429 and 5xx are retried with
 * exponential backoff (0.25 s, 0.5 s, 1 s, ...); the last failure becomes an "unreachable" error.
 */
async function requestUrl(
    endpoint: RegistryEndpoint,
    method: string,
    url: URL,
    headers: Record<string, string>,
    body?: Buffer,
): Promise<Response> {
    const retries = endpoint.retries ?? 3;
    let last = "";
    for (let attempt = 0; attempt <= retries; attempt++) {
        if (attempt > 0) await new Promise((r) => setTimeout(r, 250 * 2 ** (attempt - 1)));
        try {
            const res = await once(endpoint, method, url, headers, body);
            if (res.status === 429 || res.status >= 500) {
                last = `${method} ${url.pathname} answered ${res.status}`;
                continue;
            }
            return res;
        } catch (e) {
            if (isTlsTrustError(e)) {
                throw registryError(
                    `${endpointName(endpoint)}: the registry's TLS certificate is not trusted (${(e as Error).message}). ` +
                        "If the registry uses its own certificate authority, give its PEM certificate as caCertificate.",
                    "tls",
                );
            }
            last = (e as Error).message;
        }
    }
    throw registryError(
        `${endpointName(endpoint)}: the registry at ${url.origin} cannot be reached (${last}; ${retries + 1} attempts). ` +
            "Check the network and the registry address; nothing was pushed.",
        "unreachable",
    );
}

/** Certificate verification failures: retrying cannot help, and the fix is different. */
function isTlsTrustError(e: unknown): boolean {
    const code = String((e as NodeJS.ErrnoException)?.code ?? "");
    return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(code);
}

function once(
    endpoint: RegistryEndpoint,
    method: string,
    url: URL,
    headers: Record<string, string>,
    body?: Buffer,
): Promise<Response> {
    const timeoutMs = endpoint.timeoutMs ?? 10_000;
    const secure = url.protocol === "https:";
    const options: https.RequestOptions = {
        method,
        headers: body ? { ...headers, "Content-Length": String(body.length) } : headers,
        timeout: timeoutMs,
    };
    if (secure && endpoint.caCertificate) {
        // `ca` replaces Node's root store: keep the public roots and add the registry's own CA.
        options.ca = [...tls.rootCertificates, endpoint.caCertificate];
    }
    return new Promise((resolve, reject) => {
        const req = (secure ? https : http).request(url, options, (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () =>
                resolve({
                    status: res.statusCode ?? 0,
                    headers: res.headers,
                    body: Buffer.concat(chunks),
                }),
            );
            res.on("error", reject);
        });
        req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
        req.on("error", reject);
        req.end(body);
    });
}
