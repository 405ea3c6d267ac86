/**
 * A small OCI Distribution API client: does a tag exist in a repository, what digest is behind
 * it, what manifest and image config does it name. Speaks the standard auth flow (anonymous,
 * HTTP Basic, and the Bearer token challenge that public.ecr.aws, private ECR and most registries
 * use), follows redirects safely, honours HTTPS_PROXY / HTTP_PROXY / NO_PROXY as Docker does, and
 * bounds every lookup: an idle timeout, a wall-clock deadline per request and per lookup, a cap on
 * every body it reads, and a bounded retry on server errors and connection failures.
 *
 * A tag counts as absent only when the registry says so unambiguously: the endpoint answered
 * `GET /v2/` as a registry does, and both HEAD and GET of the manifest answered 404. With
 * credentials, the client authenticates before asking (registries hide private repositories from
 * anonymous requests behind a 404).
 *
 * HTTP goes through undici. The immutability guard's dynamic provider carries this module through
 * Pulumi's closure serialization, which keeps undici as `require("undici/index.js")`, resolved
 * from the provider host's working directory when the provider runs: the engine starts that host
 * in the project directory, where node_modules has it. Everything else is Node built-ins, and no
 * class is defined here (the serializer mishandles Error subclasses; see `registryError`).
 */
import { createHash } from "crypto";
import * as tls from "tls";
import { Agent, Dispatcher, ProxyAgent, request } from "undici";
import { RegistryError, registryError, shown, withoutCredentials } from "./errors";
import { isLoopbackHost, proxyFor } from "./proxy";

export { registryError, shown } from "./errors";
export type { RegistryError } from "./errors";
export { proxyFor } from "./proxy";

export interface RegistryEndpoint {
    /**
     * Base URL of the registry API, e.g. `https://public.ecr.aws` or `http://127.0.0.1:5000`. A
     * path is kept as a prefix (`https://host/mirror` asks `https://host/mirror/v2/...`).
     */
    readonly apiUrl: string;
    /** Repository path inside the registry, e.g. `abc123/my-model`. */
    readonly repository: string;
    /** Credentials; without them the client asks for anonymous access. */
    readonly credentials?: { readonly username: string; readonly password: string };
    /** PEM certificate authority to trust in addition to the public roots. */
    readonly caCertificate?: string;
    /**
     * How long a request attempt waits to connect, for the answer's headers, and for each next
     * piece of its body. Defaults to 10 s.
     */
    readonly timeoutMs?: number;
    /**
     * Wall-clock limit of one request attempt, however slowly the server trickles its answer.
     * Defaults to 30 s (or `timeoutMs`, when that is longer).
     */
    readonly requestDeadlineMs?: number;
    /** Wall-clock limit of a whole lookup: every request, redirect and retry. Defaults to 60 s. */
    readonly deadlineMs?: number;
    /** Retries after a server error, throttling or a connection failure. Defaults to 3. */
    readonly retries?: number;
    /** Largest manifest accepted. Defaults to 4 MiB, the ECR manifest size limit. */
    readonly maxManifestBytes?: number;
    /** Largest image config blob accepted. Defaults to 8 MiB. */
    readonly maxConfigBytes?: number;
}

export type ManifestLookup =
    | { readonly exists: false }
    | { readonly exists: true; readonly digest: string; readonly mediaType: string };

export interface Manifest {
    readonly digest: string;
    readonly mediaType: string;
    /** The manifest exactly as the registry serves it. */
    readonly body: Buffer;
}

export interface ImageConfig {
    /** Digest of the image manifest (the platform's manifest when the reference is an index). */
    readonly manifestDigest: string;
    readonly configDigest: string;
    /** `config.Labels` of the image config; empty when it has none. */
    readonly labels: Record<string, string>;
}

/** Every manifest type a registry may store under a tag; a strict registry serves only these. */
const MANIFEST_MEDIA_TYPES = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.oci.artifact.manifest.v1+json",
];
const MANIFEST_ACCEPT = [...MANIFEST_MEDIA_TYPES, "*/*;q=0.1"].join(", ");

/** Token answers, error bodies and redirects: small, whatever the server sends. */
const SMALL_BODY_BYTES = 256 * 1024;
const MAX_REDIRECTS = 10;

interface Response {
    readonly status: number;
    /** Lower-case names; a repeated header as an array. */
    readonly headers: Readonly<Record<string, string | string[] | undefined>>;
    readonly body: Buffer;
    /** A 2xx answer's body, unread, when the request asked to stream it (`body` is then empty). */
    readonly stream?: BodyStream;
}

/** What one request sends and accepts. */
interface Exchange {
    /** Largest body read into memory. */
    readonly maxBytes: number;
    /**
     * The request body. An async iterable is sent as it is produced, once: such a request is
     * neither retried nor repeated after an auth challenge, and has no wall-clock limit (only
     * the idle timeout), however long the body.
     */
    readonly body?: Buffer | AsyncIterable<Buffer>;
    /** Hand a 2xx answer's body over unread, as `stream`, with no wall-clock limit. */
    readonly stream?: boolean;
    /** Fetch a new Bearer token once when the registry refuses the one sent (it expired). */
    readonly renew?: boolean;
}

/** An answer body read as it arrives; `destroy` drops what is left of it. */
export interface BodyStream extends AsyncIterable<Buffer> {
    destroy(): void;
}

/** What one answer was for: the request that produced it, after redirects. */
interface Answer extends Response {
    readonly method: string;
    readonly url: URL;
}

/** One lookup: its endpoint, deadline, and what it learned about the registry so far. */
interface Operation {
    readonly endpoint: RegistryEndpoint;
    readonly base: URL;
    /** The path of `apiUrl`, without a trailing slash: `""` or e.g. `/mirror`. */
    readonly prefix: string;
    readonly name: string;
    /** Renewed for each step of a session (see `openSession`). */
    deadline: number;
    readonly deadlineMs: number;
    readonly requestDeadlineMs: number;
    /** The Authorization header for the registry's origin, once known. */
    authorization?: string;
    /** `GET /v2/` answered as a registry does. */
    confirmed: boolean;
    /** Connections of this lookup, by proxy (or "direct"); closed when it ends. */
    readonly dispatchers: Map<string, Dispatcher>;
    /** Token scopes asked for besides this repository's (e.g. pull on a mount's source). */
    readonly scopes: readonly string[];
    /** What a session's requests do to the repository (lookups pass their own). */
    readonly action: "pull" | "push,pull";
}

/** Looks up `<repository>:<reference>` (a tag or a digest), with HEAD first. */
export async function headManifest(
    endpoint: RegistryEndpoint,
    reference: string,
): Promise<ManifestLookup> {
    return withOperation(endpoint, reference, async (op) => {
        const found = await lookupManifest(op, reference, false);
        return found
            ? { exists: true, digest: found.digest, mediaType: found.mediaType }
            : { exists: false };
    });
}

/**
 * Fetches `<repository>:<reference>` exactly as stored; `undefined` when the registry does not
 * have it (by the same rules as `headManifest`). A digest reference is verified against the body.
 */
export async function getManifest(
    endpoint: RegistryEndpoint,
    reference: string,
): Promise<Manifest | undefined> {
    return withOperation(endpoint, reference, async (op) => {
        const found = await lookupManifest(op, reference, true);
        return found?.body
            ? { digest: found.digest, mediaType: found.mediaType, body: found.body }
            : undefined;
    });
}

/**
 * The image config behind `<repository>:<reference>`: an index or manifest list is resolved to
 * the manifest for `platform` (`os/arch[/variant]`; defaults to the only image in it, else
 * `linux/amd64`), then its config blob is fetched and verified. `undefined` when the reference is
 * absent.
 */
export async function getImageConfig(
    endpoint: RegistryEndpoint,
    reference: string,
    platform?: string,
): Promise<ImageConfig | undefined> {
    return withOperation(endpoint, reference, (op) => imageConfig(op, reference, platform));
}

async function imageConfig(
    op: Operation,
    reference: string,
    platform: string | undefined,
): Promise<ImageConfig | undefined> {
    const wanted = platform === undefined ? undefined : parsePlatform(op, platform);
    const top = await lookupManifest(op, reference, true);
    if (!top?.body) return undefined;
    let image = { digest: top.digest, mediaType: top.mediaType, json: manifestJson(op, top) };
    if (isIndex(image.mediaType, image.json)) {
        const digest = choosePlatform(op, reference, image.json, wanted);
        const child = await lookupManifest(op, digest, true);
        if (!child?.body) {
            throw registryError(
                `${op.name}: the index ${reference} names ${digest}, which the registry does not have`,
                "protocol",
            );
        }
        image = { digest: child.digest, mediaType: child.mediaType, json: manifestJson(op, child) };
        if (isIndex(image.mediaType, image.json)) {
            throw registryError(`${op.name}: ${digest} is an index inside an index`, "protocol");
        }
    }
    const config = image.json.config as { digest?: unknown; size?: unknown } | undefined;
    if (!config || typeof config.digest !== "string" || !isDigest(config.digest)) {
        throw registryError(
            `${op.name}: ${reference} (${image.mediaType || "unknown media type"}) is not an image manifest with a config blob`,
            "protocol",
        );
    }
    const blob = await fetchBlob(
        op,
        config.digest,
        typeof config.size === "number" ? config.size : undefined,
        op.endpoint.maxConfigBytes ?? 8 * 1024 * 1024,
    );
    let labels: Record<string, string> = {};
    try {
        const parsed = JSON.parse(blob.toString("utf8")) as { config?: { Labels?: unknown } };
        const raw = parsed?.config?.Labels;
        if (raw && typeof raw === "object") {
            labels = Object.fromEntries(
                Object.entries(raw).filter((e): e is [string, string] => typeof e[1] === "string"),
            );
        }
    } catch {
        throw registryError(
            `${op.name}: the image config ${config.digest} is not JSON`,
            "protocol",
        );
    }
    return { manifestDigest: image.digest, configDigest: config.digest, labels };
}

/**
 * A problem message when `apiUrl` (where the guard asks) and the server in `repositoryUri` (where
 * docker pushes) are not the same registry; `undefined` when they are. Default ports count:
 * `https://public.ecr.aws` and `public.ecr.aws/abc/x` agree.
 */
export function checkSameRegistry(apiUrl: string, repositoryUri: string): string | undefined {
    // Both may come from another stack's outputs: shown escaped, never raw.
    const uri = shown(repositoryUri);
    let api: URL;
    const named = withoutCredentials(apiUrl);
    try {
        api = new URL(apiUrl);
    } catch {
        return `apiUrl "${named}" is not a URL; expected e.g. https://public.ecr.aws`;
    }
    if (api.protocol !== "https:" && api.protocol !== "http:") {
        return `apiUrl ${named} must be an http(s) URL, e.g. https://public.ecr.aws`;
    }
    const root = `${api.protocol}//${api.host}`;
    if (api.username || api.password) {
        return `apiUrl ${named} must not carry credentials; give them as the target's credentials and use apiUrl ${root}`;
    }
    if (api.pathname !== "/" || api.search || api.hash) {
        return (
            `apiUrl ${named} has a path, query or fragment, but docker pushes to ${root}/v2/, so the guard ` +
            `must look there: use apiUrl ${root}`
        );
    }
    if (repositoryUri.includes("://")) {
        return `repositoryUri ${uri} must be <server>/<path> as docker names it, without a scheme`;
    }
    const slash = repositoryUri.indexOf("/");
    if (slash <= 0 || slash === repositoryUri.length - 1) {
        return `repositoryUri ${uri} has no repository path; expected <server>/<path>`;
    }
    const first = repositoryUri.slice(0, slash);
    // Docker's rule: the first component names a server only if it looks like one.
    const pushServer =
        first.includes(".") ||
        first.includes(":") ||
        first === "localhost" ||
        first !== first.toLowerCase()
            ? first
            : "docker.io";
    const m = /^(\[[^\]]+\]|[^:[\]]+)(?::(\d+))?$/.exec(pushServer);
    let pushHost: string;
    try {
        pushHost = m ? new URL(`http://${m[1]}`).hostname : "";
    } catch {
        pushHost = "";
    }
    if (!m || !pushHost) {
        return `repositoryUri ${uri} does not start with a registry server name`;
    }
    const defaultPort = api.protocol === "https:" ? "443" : "80";
    const pushPort = m[2] ?? defaultPort;
    const apiPort = api.port || defaultPort;
    const dockerHub = [
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
        "registry.hub.docker.com",
    ];
    const same = (a: string, b: string) =>
        a === b || (dockerHub.includes(a) && dockerHub.includes(b));
    if (same(pushHost, api.hostname) && pushPort === apiPort) return undefined;
    return (
        `repositoryUri ${uri} is pushed to ${shown(pushServer)} but apiUrl ${named} asks ` +
        `${api.host || api.hostname} (port ${apiPort}): the guard would check one registry while docker ` +
        `pushes to another. Use the same registry in both (e.g. apiUrl ${api.protocol}//${shown(pushServer)}).`
    );
}

/**
 * Sends one request to the registry, authenticating first when there are credentials (a `GET
 * /v2/` ping learns the challenge), and answering an auth challenge once otherwise: Basic with
 * the credentials, or Bearer with a token from the challenge's realm. `path` is relative to
 * `apiUrl` (its path prefix is kept). GET and HEAD follow redirects.
 */
export async function authorizedRequest(
    endpoint: RegistryEndpoint,
    method: string,
    path: string,
    headers: Record<string, string>,
    action: "pull" | "push,pull",
    body?: Buffer,
): Promise<Response> {
    const op = startOperation(endpoint);
    try {
        const res = await authorized(op, method, path, headers, action, {
            maxBytes: endpoint.maxManifestBytes ?? 4 * 1024 * 1024,
            body,
        });
        return { status: res.status, headers: res.headers, body: res.body };
    } finally {
        await endOperation(op);
    }
}

interface Challenge {
    readonly scheme: "basic" | "bearer";
    readonly params: Readonly<Record<string, string>>;
}

/**
 * Parses a `WWW-Authenticate` value, which may join several challenges
 * (`Basic realm="x", Bearer realm="...",service="..."`), and returns the one to answer: Bearer,
 * else Basic; `undefined` when it offers neither.
 */
export function parseChallenge(header: string): Challenge | undefined {
    const challenges: { scheme: string; params: Record<string, string> }[] = [];
    const token = /[!#$%&'*+.^_`|~0-9A-Za-z-]+/y;
    const param = /([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))/y;
    const separators = /[\s,]*/y;
    let i = 0;
    const skip = () => {
        separators.lastIndex = i;
        separators.exec(header);
        i = separators.lastIndex;
    };
    for (skip(); i < header.length; skip()) {
        token.lastIndex = i;
        const scheme = token.exec(header);
        if (!scheme) break; // not a challenge: stop rather than guess
        i = token.lastIndex;
        const challenge = { scheme: scheme[0].toLowerCase(), params: {} as Record<string, string> };
        challenges.push(challenge);
        for (;;) {
            const before = i;
            skip();
            param.lastIndex = i;
            const p = param.exec(header);
            if (!p) {
                i = before; // the next token starts another challenge
                break;
            }
            challenge.params[p[1].toLowerCase()] =
                p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : p[3];
            i = param.lastIndex;
        }
    }
    for (const scheme of ["bearer", "basic"] as const) {
        const found = challenges.find((c) => c.scheme === scheme);
        if (found) return { scheme, params: found.params };
    }
    return undefined;
}

// ---------------------------------------------------------------------------------------------
// Lookups

interface Found {
    readonly digest: string;
    readonly mediaType: string;
    readonly body?: Buffer;
}

/**
 * The manifest behind `reference`, or `undefined` when the registry does not have it: only after
 * both HEAD and GET answered 404 (some registries mishandle one of them) and the endpoint proved
 * to be a registry. `withBody` asks with GET first, else HEAD first. Auth asks for the
 * operation's action (`pull`, or `push,pull` for a copy's destination).
 */
async function lookupManifest(
    op: Operation,
    reference: string,
    withBody: boolean,
): Promise<Found | undefined> {
    const path = `/v2/${op.endpoint.repository}/manifests/${reference}`;
    const headers = { Accept: MANIFEST_ACCEPT };
    const opts = { maxBytes: op.endpoint.maxManifestBytes ?? 4 * 1024 * 1024 };
    const [first, second] = withBody ? ["GET", "HEAD"] : ["HEAD", "GET"];
    let res = await authorized(op, first, path, headers, op.action, opts);
    if (res.status === 404) {
        checkNotFound(op, res);
        res = await authorized(op, second, path, headers, op.action, opts);
        if (res.status === 404) {
            checkNotFound(op, res);
            await confirmRegistry(op, op.action);
            return undefined;
        }
    }
    if (res.status !== 200) throw unexpected(op, res, "200 or 404");
    const digestHeader = headerOf(res.headers, "docker-content-digest");
    if (res.method === "HEAD" && (withBody || !digestHeader || !isDigest(digestHeader))) {
        // Some registries leave the digest out of HEAD answers: fetch the manifest and hash it.
        res = await authorized(op, "GET", path, headers, op.action, opts);
        if (res.status !== 200) throw unexpected(op, res, "200, as HEAD did");
    }
    return manifestFrom(op, reference, res);
}

/** Digest and media type of a manifest answer, verified against the body when there is one. */
function manifestFrom(op: Operation, reference: string, res: Answer): Found {
    const header = headerOf(res.headers, "docker-content-digest");
    let mediaType = (headerOf(res.headers, "content-type") ?? "").split(";")[0].trim();
    const byDigest = isDigest(reference);
    if (header !== undefined && !isDigest(header)) {
        throw registryError(
            `${op.name}: ${res.method} ${res.url.pathname} sent an invalid Docker-Content-Digest "${shown(header, 140)}"`,
            "protocol",
        );
    }
    if (res.method === "HEAD") {
        const digest = header ?? reference;
        if (byDigest && digest !== reference) throw digestMismatch(op, reference, digest);
        return { digest, mediaType };
    }
    const body = res.body;
    if (!mediaType || mediaType === "application/json" || mediaType === "text/plain") {
        try {
            const json = JSON.parse(body.toString("utf8")) as { mediaType?: unknown };
            if (typeof json.mediaType === "string") mediaType = json.mediaType;
        } catch {
            // keep the header's type
        }
    }
    // A signed schema 1 manifest's digest covers its payload, without the signatures.
    const signed = mediaType === "application/vnd.docker.distribution.manifest.v1+prettyjws";
    const hashed = (signed && schema1Payload(body)) || body;
    const algorithm = (byDigest ? reference : (header ?? "sha256:")).split(":")[0];
    const computed = digestOf(algorithm, hashed);
    if (byDigest && computed !== reference) throw digestMismatch(op, reference, computed);
    if (header !== undefined && header.startsWith(`${algorithm}:`) && header !== computed) {
        throw registryError(
            `${op.name}: the manifest ${reference} hashes to ${computed}, but the registry says ${header}`,
            "protocol",
        );
    }
    return { digest: header ?? computed, mediaType, body };
}

/** A blob (an image config) by digest: redirects followed, size capped, digest verified. */
async function fetchBlob(
    op: Operation,
    digest: string,
    size: number | undefined,
    maxBytes: number,
): Promise<Buffer> {
    if (size !== undefined && size > maxBytes) {
        throw registryError(
            `${op.name}: the blob ${digest} is ${size} bytes, more than the ${maxBytes}-byte limit (maxConfigBytes)`,
            "protocol",
        );
    }
    const path = `/v2/${op.endpoint.repository}/blobs/${digest}`;
    const res = await authorized(op, "GET", path, {}, "pull", { maxBytes });
    if (res.status !== 200) throw unexpected(op, res, "200");
    const computed = digestOf(digest.split(":")[0], res.body);
    if (computed !== digest) throw digestMismatch(op, digest, computed);
    return res.body;
}

function manifestJson(op: Operation, found: Found): Record<string, unknown> {
    try {
        const json = JSON.parse((found.body ?? Buffer.alloc(0)).toString("utf8"));
        if (json && typeof json === "object" && !Array.isArray(json)) return json;
    } catch {
        // reported below
    }
    throw registryError(
        `${op.name}: the manifest ${found.digest} is not a JSON object`,
        "protocol",
    );
}

function isIndex(mediaType: string, json: Record<string, unknown>): boolean {
    return (
        mediaType === "application/vnd.oci.image.index.v1+json" ||
        mediaType === "application/vnd.docker.distribution.manifest.list.v2+json" ||
        (Array.isArray(json.manifests) && json.config === undefined)
    );
}

interface Platform {
    readonly os: string;
    readonly architecture: string;
    readonly variant?: string;
}

function parsePlatform(op: Operation, platform: string): Platform {
    const m = /^([a-z0-9_.-]+)\/([a-z0-9_.-]+)(?:\/([a-z0-9_.-]+))?$/.exec(platform);
    if (!m) {
        throw registryError(
            `${op.name}: platform ${JSON.stringify(platform)} is not os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8`,
            "invalid",
        );
    }
    return { os: m[1], architecture: m[2], variant: m[3] };
}

/** The digest of the manifest for `wanted` in an index (attestation entries do not count). */
function choosePlatform(
    op: Operation,
    reference: string,
    index: Record<string, unknown>,
    wanted: Platform | undefined,
): string {
    const entries = (Array.isArray(index.manifests) ? index.manifests : [])
        .map((m) => m as { digest?: unknown; platform?: Partial<Platform> })
        .filter((m) => typeof m.digest === "string" && isDigest(m.digest))
        .filter((m) => !(m.platform?.os === "unknown" && m.platform?.architecture === "unknown"));
    const label = (p?: Partial<Platform>) =>
        p
            ? shown([p.os, p.architecture, p.variant].filter((x) => x).join("/"), 60)
            : "(no platform)";
    const target =
        wanted ?? (entries.length === 1 ? undefined : { os: "linux", architecture: "amd64" });
    const matches = target
        ? entries.filter(
              (m) =>
                  m.platform?.os === target.os &&
                  m.platform?.architecture === target.architecture &&
                  (target.variant === undefined || variantOf(m.platform) === variantOf(target)),
          )
        : entries;
    if (matches.length !== 1) {
        throw registryError(
            `${op.name}: the index ${reference} has ${matches.length === 0 ? "no" : "more than one"} image for ` +
                `${target ? label(target) : "the only platform"} (it has: ${entries.map((m) => label(m.platform)).join(", ") || "none"}); ` +
                "name the platform as os/arch[/variant]",
            "protocol",
        );
    }
    return matches[0].digest as string;
}

/** A platform's variant, with containerd's default for arm64 (`v8`) filled in. */
function variantOf(p: Partial<Platform> | undefined): string {
    return p?.variant ?? (p?.architecture === "arm64" ? "v8" : "");
}

// ---------------------------------------------------------------------------------------------
// Sessions: the primitives of a copy between repositories (lib/oci/copy.ts)

/**
 * One repository's connections and auth, kept for a job of many requests (a copy). Each call
 * below renews the session's `deadlineMs` and is bounded as a lookup's requests are (each
 * attempt by `requestDeadlineMs`, at most `retries` more); a streamed body only by the idle
 * timeout (`timeoutMs` between chunks), however long the whole. `closeSession` closes the
 * connections.
 */
export interface RegistrySession {
    readonly endpoint: RegistryEndpoint;
    /** `registry <host>, repository <path>`: how messages name it. */
    readonly name: string;
}

export interface SessionOptions {
    /** What the session does to its repository: `push,pull` for a destination. Defaults to `pull`. */
    readonly action?: "pull" | "push,pull";
    /**
     * Other repositories of the same registry the session reads, as the source of a
     * cross-repository mount: each adds its pull scope to the Bearer token request.
     */
    readonly alsoPull?: readonly string[];
}

/** What answered a session request, after redirects. */
export interface SessionAnswer {
    readonly status: number;
    /** Lower-case names; a repeated header as an array. */
    readonly headers: Readonly<Record<string, string | string[] | undefined>>;
    /** The body, read in full; empty when it comes as `stream`. */
    readonly body: Buffer;
    /** A 2xx answer's body to read as it arrives (`sessionStream` without an upload). */
    readonly stream?: BodyStream;
    readonly method: string;
    readonly url: URL;
}

/** Opens a session on `endpoint`, validated as every lookup validates it; nothing is sent yet. */
export function openSession(
    endpoint: RegistryEndpoint,
    options: SessionOptions = {},
): RegistrySession {
    for (const repository of options.alsoPull ?? []) {
        if (!isRepositoryPath(repository)) {
            throw registryError(
                `repository ${JSON.stringify(repository)} is not a valid repository path`,
                "invalid",
            );
        }
    }
    const action = options.action ?? "pull";
    const scopes = (options.alsoPull ?? []).map((r) => `repository:${r}:pull`);
    return startOperation(endpoint, { action, scopes });
}

/** Closes a session's connections. */
export async function closeSession(session: RegistrySession): Promise<void> {
    await endOperation(session as Operation);
}

/** The session, its deadline renewed for the next step. */
function step(session: RegistrySession): Operation {
    const op = session as Operation;
    op.deadline = Date.now() + op.deadlineMs;
    return op;
}

/**
 * The manifest behind `reference` by the rules of `headManifest` (without a body) and
 * `getManifest` (with it): absent only when the registry says so; the body verified.
 */
export async function findManifest(
    session: RegistrySession,
    reference: string,
    withBody: boolean,
): Promise<{ digest: string; mediaType: string; body?: Buffer } | undefined> {
    const op = step(session);
    checkReference(op, reference);
    return lookupManifest(op, reference, withBody);
}

/**
 * The digest of the image for `platform` (`os/arch[/variant]`) in an index or manifest list,
 * as `getImageConfig` picks it.
 */
export function platformDigest(
    session: RegistrySession,
    index: { digest: string; mediaType: string; body: Buffer },
    platform: string,
): string {
    const op = session as Operation;
    const wanted = parsePlatform(op, platform);
    const json = manifestJson(op, index);
    if (!isIndex(index.mediaType, json)) {
        throw registryError(
            `${op.name}: ${index.digest} (${index.mediaType}) is not an index, so no platform can be chosen from it`,
            "invalid",
        );
    }
    return choosePlatform(op, index.digest, json, wanted);
}

/**
 * One request of a session, its answer read in full (up to `maxManifestBytes`). `target` is a
 * path relative to `apiUrl`, or a URL the registry named (an upload location), which gets the
 * Authorization only on the registry's own origin. GET and HEAD follow redirects. Retried and
 * bounded as a lookup's requests are; an expired Bearer token is renewed once.
 */
export async function sessionRequest(
    session: RegistrySession,
    method: string,
    target: string | URL,
    headers: Record<string, string>,
    body?: Buffer,
): Promise<SessionAnswer> {
    const op = step(session);
    const maxBytes = op.endpoint.maxManifestBytes ?? 4 * 1024 * 1024;
    return authorized(op, method, target, headers, op.action, { maxBytes, body, renew: true });
}

/**
 * A request whose body is too large for memory. With `upload`, the body is sent as it is
 * produced (give its Content-Length), once: it is not retried, and the registry must already
 * have authenticated the session (the upload's POST does that). Without, a 2xx answer's body
 * comes as `stream`, redirects followed (without the Authorization on another origin). Either
 * way the transfer has no wall-clock limit, only the idle timeout.
 */
export async function sessionStream(
    session: RegistrySession,
    method: string,
    target: string | URL,
    headers: Record<string, string>,
    upload?: AsyncIterable<Buffer>,
): Promise<SessionAnswer> {
    const op = step(session);
    return authorized(op, method, target, headers, op.action, {
        maxBytes: SMALL_BODY_BYTES,
        body: upload,
        stream: upload === undefined,
        renew: true,
    });
}

/** The error for an answer the protocol does not allow, with the registry's error code. */
export function unexpectedAnswer(
    session: RegistrySession,
    answer: SessionAnswer,
    expected: string,
): RegistryError {
    return unexpected(session as Operation, answer, expected);
}

// ---------------------------------------------------------------------------------------------
// Validation

/** Runs one lookup of `reference`, checked before any request; closes its connections after. */
async function withOperation<T>(
    endpoint: RegistryEndpoint,
    reference: string,
    run: (op: Operation) => Promise<T>,
): Promise<T> {
    const op = startOperation(endpoint);
    try {
        checkReference(op, reference);
        return await run(op);
    } finally {
        await endOperation(op);
    }
}

/** Refuses an endpoint that would send requests somewhere other than what it names. */
function startOperation(
    endpoint: RegistryEndpoint,
    session: Pick<Operation, "scopes" | "action"> = { scopes: [], action: "pull" },
): Operation {
    let base: URL;
    const named = withoutCredentials(String(endpoint.apiUrl));
    try {
        base = new URL(endpoint.apiUrl);
    } catch {
        throw registryError(
            `apiUrl "${named}" is not a URL; expected e.g. https://public.ecr.aws`,
            "invalid",
        );
    }
    const problem =
        base.protocol !== "https:" && base.protocol !== "http:"
            ? "must be an http:// or https:// URL"
            : base.username || base.password
              ? "must not carry credentials (give them as credentials)"
              : base.search || base.hash
                ? "must not have a query or fragment"
                : /\/v2\/?$/.test(base.pathname)
                  ? "must not end in /v2 (the client adds it)"
                  : undefined;
    if (problem) {
        throw registryError(`apiUrl ${named} ${problem}, e.g. https://public.ecr.aws`, "invalid");
    }
    const repository = endpoint.repository;
    if (!isRepositoryPath(repository)) {
        throw registryError(
            `repository ${JSON.stringify(repository)} is not a valid repository path: lower-case ` +
                "letters and digits in /-separated components, separated inside by ., _, __ or -, " +
                "e.g. abc123/my-model",
            "invalid",
        );
    }
    const deadlineMs = endpoint.deadlineMs ?? 60_000;
    return {
        endpoint,
        base,
        prefix: base.pathname.replace(/\/+$/, ""),
        name: `registry ${base.host}, repository ${repository}`,
        deadline: Date.now() + deadlineMs,
        deadlineMs,
        requestDeadlineMs: endpoint.requestDeadlineMs ?? Math.max(30_000, endpoint.timeoutMs ?? 0),
        confirmed: false,
        dispatchers: new Map(),
        scopes: session.scopes,
        action: session.action,
    };
}

function isRepositoryPath(repository: unknown): boolean {
    const component = "[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*";
    return (
        typeof repository === "string" &&
        repository.length <= 255 &&
        new RegExp(`^${component}(?:/${component})*$`).test(repository)
    );
}

/** Refuses a tag or digest that a registry would not take, before any request. */
export function checkReference(session: RegistrySession, reference: string): void {
    if (typeof reference === "string" && reference.includes(":")) {
        if (!isDigest(reference)) {
            throw registryError(
                `${session.name}: ${JSON.stringify(reference)} is not a valid digest (sha256:<64 hex digits> or sha512:<128 hex digits>)`,
                "invalid",
            );
        }
    } else if (typeof reference !== "string" || !/^\w[\w.-]{0,127}$/.test(reference)) {
        throw registryError(
            `${session.name}: ${JSON.stringify(reference)} is not a valid tag: 1 to 128 letters, digits, _, . ` +
                "and -, not starting with . or -",
            "invalid",
        );
    }
}

function isDigest(value: string): boolean {
    return /^(?:sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$/.test(value);
}

function digestOf(algorithm: string, data: Buffer): string {
    return `${algorithm}:${createHash(algorithm).update(data).digest("hex")}`;
}

/** The signed payload of a schema 1 `prettyjws` manifest (what its digest covers). */
function schema1Payload(body: Buffer): Buffer | undefined {
    try {
        const jws = JSON.parse(body.toString("utf8")) as { signatures?: { protected?: string }[] };
        const header = JSON.parse(
            Buffer.from(jws.signatures?.[0]?.protected ?? "", "base64url").toString("utf8"),
        ) as { formatLength?: unknown; formatTail?: unknown };
        if (typeof header.formatLength !== "number" || typeof header.formatTail !== "string") {
            return undefined;
        }
        return Buffer.concat([
            body.subarray(0, header.formatLength),
            Buffer.from(header.formatTail, "base64url"),
        ]);
    } catch {
        return undefined;
    }
}

function digestMismatch(op: Operation, expected: string, actual: string): RegistryError {
    return registryError(
        `${op.name}: the registry served content for ${expected} that hashes to ${actual}`,
        "protocol",
    );
}

// ---------------------------------------------------------------------------------------------
// Registry confirmation and auth

/**
 * Confirms that the endpoint is a registry: `GET /v2/` answers 200 or 401 (and says
 * `registry/2.0` if it sends Docker-Distribution-API-Version). Learns the auth challenge on the
 * way; with credentials, prepares the Authorization for the requests that follow.
 */
async function confirmRegistry(op: Operation, action = "pull"): Promise<void> {
    if (op.confirmed) return;
    const url = registryUrl(op, "/v2/");
    const headers: Record<string, string> = op.authorization
        ? { Authorization: op.authorization }
        : {};
    const res = await exchange(op, "GET", url, headers, { maxBytes: SMALL_BODY_BYTES });
    const version = headerOf(res.headers, "docker-distribution-api-version");
    const registry =
        (res.status === 200 || res.status === 401) &&
        (version === undefined || version.trim().toLowerCase() === "registry/2.0") &&
        !isHtml(res);
    if (!registry) {
        throw registryError(
            `${op.name}: ${op.base.href} is not an OCI registry API: GET ${url.pathname} answered ${res.status}` +
                `${contentTypeNote(res)}${version ? ` (Docker-Distribution-API-Version ${shown(version, 80)})` : ""}, ` +
                "where a registry answers 200 or 401. Check apiUrl (e.g. https://public.ecr.aws); nothing was pushed.",
            "protocol",
        );
    }
    op.confirmed = true;
    const credentials = op.endpoint.credentials;
    if (!credentials || op.authorization) return;
    if (res.status === 401) {
        checkOwnChallenge(op, res);
        op.authorization = await authorize(op, res, action);
    } else if (op.base.protocol === "https:") {
        // The API root is open, but repositories may not be: over TLS, to the registry's own
        // origin, the credentials can go along with every request.
        op.authorization = basic(credentials);
    }
}

/**
 * A request to the registry's origin with its auth: credentials first (via the ping), else
 * anonymous with one answer to a 401 challenge. `path` is relative to `apiUrl`, or a URL the
 * registry named (an upload location): the Authorization goes only to the registry's origin.
 */
async function authorized(
    op: Operation,
    method: string,
    path: string | URL,
    headers: Record<string, string>,
    action: string,
    opts: Exchange,
): Promise<Answer> {
    if (op.endpoint.credentials && !op.confirmed) await confirmRegistry(op, action);
    const url = typeof path === "string" ? registryUrl(op, path) : path;
    const ours = url.origin === op.base.origin;
    const withAuth = () =>
        ours && op.authorization ? { ...headers, Authorization: op.authorization } : headers;
    const sent = ours ? op.authorization : undefined;
    // A body sent as it is produced cannot be sent again.
    const repeatable = opts.body === undefined || Buffer.isBuffer(opts.body);
    const expired = opts.renew === true && sent?.startsWith("Bearer ") === true;
    let res = await exchange(op, method, url, withAuth(), opts);
    if (res.status === 401) checkOwnChallenge(op, res);
    if (res.status === 401 && ours && repeatable && (!sent || expired)) {
        op.authorization = await authorize(op, res, action);
        res = await exchange(op, method, url, withAuth(), opts);
    }
    if (res.status === 401 || (res.status === 403 && op.authorization)) {
        throw registryError(
            `${op.name}: the registry refused ${op.endpoint.credentials ? "the credentials" : "anonymous access"} ` +
                `(${res.status} on ${method} ${url.pathname})`,
            "auth",
        );
    }
    return res;
}

/**
 * Refuses a 401 from another origin than the registry's (a redirect led there): whatever it
 * asks for, neither the credentials nor a token for them go to it.
 */
function checkOwnChallenge(op: Operation, res: Answer): void {
    if (res.url.origin === op.base.origin) return;
    throw registryError(
        `${op.name}: a ${res.method} request was redirected to ${res.url.origin}, which asks for credentials (401); ` +
            `they go only to ${op.base.origin} and the token service it names, so the request is refused`,
        "auth",
    );
}

/** The Authorization header that answers the challenge of a 401 from the registry's origin. */
async function authorize(op: Operation, res: Answer, action: string): Promise<string> {
    const header = headerOf(res.headers, "www-authenticate") ?? "";
    const challenge = parseChallenge(header);
    if (challenge?.scheme === "bearer")
        return `Bearer ${await fetchToken(op, challenge.params, action)}`;
    if (challenge?.scheme === "basic") {
        if (!op.endpoint.credentials) {
            throw registryError(
                `${op.name}: the registry asks for credentials and none were given`,
                "auth",
            );
        }
        return basic(op.endpoint.credentials);
    }
    throw registryError(
        `${op.name}: 401 with an auth challenge this client does not speak: "${shown(header)}"`,
        "auth",
    );
}

async function fetchToken(
    op: Operation,
    params: Readonly<Record<string, string>>,
    action: string,
): Promise<string> {
    if (!params.realm) {
        throw registryError(`${op.name}: Bearer challenge without a realm`, "auth");
    }
    let url: URL;
    try {
        url = new URL(params.realm, op.base);
    } catch {
        throw registryError(
            `${op.name}: the Bearer realm "${shown(params.realm)}" is not a URL`,
            "auth",
        );
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
        throw registryError(
            `${op.name}: the Bearer realm ${url.href} is not an http(s) URL`,
            "auth",
        );
    }
    const credentials = op.endpoint.credentials;
    // Plain HTTP to another origin crosses the network unencrypted, unless both ends are this
    // machine's loopback addresses.
    const local = [url, op.base].every((u) => isLoopbackHost(u.hostname));
    const cleartext =
        url.protocol === "http:" &&
        (op.base.protocol === "https:" || (url.origin !== op.base.origin && !local));
    if (credentials && cleartext) {
        throw registryError(
            `${op.name}: the registry names a plain-HTTP token service (${url.origin}); the credentials are ` +
                `not sent there unencrypted. The registry's token realm must be https:// (or ${op.base.origin} itself).`,
            "auth",
        );
    }
    if (params.service) url.searchParams.set("service", params.service);
    // Ask for the repository scope this request needs, as Docker's client does, plus the
    // challenge's own scope when it names another (the token spec allows several).
    const needed = `repository:${op.endpoint.repository}:${action}`;
    url.searchParams.append("scope", needed);
    if (params.scope && params.scope !== needed) url.searchParams.append("scope", params.scope);
    for (const scope of op.scopes) {
        if (scope !== needed && scope !== params.scope) url.searchParams.append("scope", scope);
    }
    const headers: Record<string, string> = { Accept: "application/json" };
    if (credentials) headers.Authorization = basic(credentials);
    const res = await exchange(op, "GET", url, headers, { maxBytes: SMALL_BODY_BYTES });
    if (res.status === 401 || res.status === 403) {
        throw registryError(
            `${op.name}: the token service ${url.host} refused ${credentials ? "the credentials" : "anonymous access"} (${res.status})`,
            "auth",
        );
    }
    if (res.status !== 200) {
        throw registryError(
            `${op.name}: the token service ${url.host} answered ${res.status}`,
            "auth",
        );
    }
    let token: unknown;
    try {
        const json = JSON.parse(res.body.toString("utf8")) as Record<string, unknown>;
        token = [json.token, json.access_token].find((t) => typeof t === "string" && t !== "");
    } catch {
        token = undefined;
    }
    if (typeof token !== "string") {
        throw registryError(`${op.name}: the token service ${url.host} sent no token`, "auth");
    }
    return token;
}

function basic(c: { username: string; password: string }): string {
    return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString("base64")}`;
}

// ---------------------------------------------------------------------------------------------
// Answers

/** A header's value; a repeated header's first value, except for challenges (all of them). */
function headerOf(headers: Response["headers"], name: string): string | undefined {
    const v = headers[name];
    if (!Array.isArray(v)) return v;
    return name === "www-authenticate" ? v.join(", ") : v[0];
}

function isHtml(res: Response): boolean {
    return /^\s*(text\/html|application\/xhtml)/i.test(headerOf(res.headers, "content-type") ?? "");
}

function contentTypeNote(res: Response): string {
    const type = headerOf(res.headers, "content-type");
    return type ? ` (${shown(type.split(";")[0].trim(), 80)})` : "";
}

/** A 404 that is a web page, not a registry's answer, is not evidence of absence. */
function checkNotFound(op: Operation, res: Answer): void {
    if (isHtml(res)) {
        throw registryError(
            `${op.name}: ${res.method} ${res.url.pathname} answered 404 with a web page, not a registry error: ` +
                `${op.base.href} does not look like an OCI registry API. Check apiUrl (e.g. https://public.ecr.aws); nothing was pushed.`,
            "protocol",
        );
    }
}

function unexpected(op: Operation, res: Answer, expected: string): RegistryError {
    let detail = "";
    try {
        const json = JSON.parse(res.body.toString("utf8")) as {
            errors?: { code?: string; message?: string }[];
        };
        const first = json.errors?.[0];
        const text = [first?.code, first?.message].filter((x) => typeof x === "string" && x);
        if (text.length > 0) detail = ` (${shown(text.join(": "))})`;
    } catch {
        detail = contentTypeNote(res);
    }
    return registryError(
        `${op.name}: ${res.method} ${res.url.pathname} answered ${res.status}${detail}; expected ${expected}`,
        "protocol",
    );
}

function registryUrl(op: Operation, path: string): URL {
    return new URL(`${op.base.origin}${op.prefix}${path}`);
}

// ---------------------------------------------------------------------------------------------
// Transport: redirects, retries, one exchange

/**
 * A request that follows redirects (GET and HEAD only, at most MAX_REDIRECTS): never from https
 * to http, and without Authorization once it leaves the origin it was meant for.
 */
async function exchange(
    op: Operation,
    method: string,
    url: URL,
    headers: Record<string, string>,
    opts: Exchange,
): Promise<Answer> {
    let current = url;
    let sent = headers;
    for (let hop = 0; ; hop++) {
        const res = await attempts(op, method, current, sent, opts);
        const location = headerOf(res.headers, "location");
        const redirect = [301, 302, 303, 307, 308].includes(res.status);
        if (!redirect || !location || (method !== "GET" && method !== "HEAD")) {
            return { ...res, method, url: current };
        }
        if (hop >= MAX_REDIRECTS) {
            throw registryError(
                `${op.name}: more than ${MAX_REDIRECTS} redirects from ${url.href}`,
                "protocol",
            );
        }
        let next: URL;
        try {
            next = new URL(location, current);
        } catch {
            throw registryError(
                `${op.name}: ${current.href} redirected to an invalid URL "${shown(location)}"`,
                "protocol",
            );
        }
        if (next.protocol !== "https:" && next.protocol !== "http:") {
            throw registryError(
                `${op.name}: ${current.href} redirected to ${next.protocol} URL`,
                "protocol",
            );
        }
        if (current.protocol === "https:" && next.protocol === "http:") {
            throw registryError(
                `${op.name}: ${current.origin} redirected ${method} ${current.pathname} to plain-HTTP ${next.origin}; ` +
                    "an https request is never downgraded",
                "protocol",
            );
        }
        if (next.origin !== current.origin) {
            sent = Object.fromEntries(
                Object.entries(sent).filter(([k]) => k.toLowerCase() !== "authorization"),
            );
        }
        current = next;
    }
}

/**
 * One HTTP exchange with retries: connection failures, timeouts, 429 and 5xx are retried with
 * exponential backoff (0.25 s, 0.5 s, 1 s, ...), within the lookup's deadline; the last failure
 * becomes an "unreachable" error. A body sent as it is produced is sent once, and a streamed
 * exchange (either way) has only the idle timeout once it has started.
 */
async function attempts(
    op: Operation,
    method: string,
    url: URL,
    headers: Record<string, string>,
    opts: Exchange,
): Promise<Response> {
    const oneShot = opts.body !== undefined && !Buffer.isBuffer(opts.body);
    const retries = oneShot ? 0 : (op.endpoint.retries ?? 3);
    const unbounded = oneShot || opts.stream === true;
    let last = "";
    let made = 0;
    let outOfTime = false;
    for (let attempt = 0; attempt <= retries; attempt++) {
        if (attempt > 0) {
            const pause = 250 * 2 ** (attempt - 1);
            if (Date.now() + pause >= op.deadline) {
                outOfTime = true;
                break;
            }
            await new Promise((r) => setTimeout(r, pause));
        }
        const left = op.deadline - Date.now();
        if (left <= 0) {
            outOfTime = true;
            break;
        }
        made++;
        try {
            const res = await once(
                op,
                method,
                url,
                headers,
                opts,
                unbounded ? Infinity : Math.min(op.requestDeadlineMs, left),
            );
            if (res.status === 429 || res.status >= 500) {
                last = `${method} ${url.pathname} answered ${res.status}`;
                continue;
            }
            return res;
        } catch (e) {
            if ((e as Partial<RegistryError>).kind) throw e;
            if (isTlsTrustError(e)) {
                throw registryError(
                    `${op.name}: the TLS certificate of ${url.host} is not trusted (${(e as Error).message}). ` +
                        "If the registry uses its own certificate authority, give its PEM certificate as caCertificate.",
                    "tls",
                );
            }
            last = (e as Error).message;
        }
    }
    if (outOfTime) {
        throw registryError(
            `${op.name}: the registry at ${url.origin} did not finish the lookup within ${op.deadlineMs} ms ` +
                `(${last || "no time left"}; ${made} attempts). Check the network and the registry address; nothing was pushed.`,
            "unreachable",
        );
    }
    throw registryError(
        `${op.name}: the registry at ${url.origin} cannot be reached (${last}; ${made} attempts). ` +
            "Check the network and the registry address; nothing was pushed.",
        "unreachable",
    );
}

/** Certificate verification failures: retrying cannot help, and the fix is different. */
function isTlsTrustError(e: unknown): boolean {
    const code = String((e as NodeJS.ErrnoException)?.code ?? "");
    return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(code);
}

/**
 * The undici dispatcher for requests of this lookup, direct or through `proxy`, made once per
 * lookup and closed at its end. Certificates are always verified (`rejectUnauthorized: true`,
 * whatever NODE_TLS_REJECT_UNAUTHORIZED says), against the public roots plus `caCertificate`.
 */
function dispatcherFor(op: Operation, proxy: URL | undefined): Dispatcher {
    const key = proxy?.href ?? "direct";
    const known = op.dispatchers.get(key);
    if (known) return known;
    const ca = op.endpoint.caCertificate;
    // `ca` replaces Node's root store: keep the public roots and add the registry's own CA.
    const trust = {
        rejectUnauthorized: true,
        ...(ca ? { ca: [...tls.rootCertificates, ca] } : {}),
    };
    const connectTimeout = op.endpoint.timeoutMs ?? 10_000;
    const dispatcher = proxy
        ? // An http:// registry through an http:// proxy: absolute-URL requests, as Go (and so
          // Docker) sends them; https:// through a CONNECT tunnel.
          new ProxyAgent({
              uri: proxy.href,
              proxyTunnel: false,
              requestTls: trust,
              proxyTls: trust,
              connectTimeout,
          })
        : new Agent({ connect: trust, connectTimeout });
    op.dispatchers.set(key, dispatcher);
    return dispatcher;
}

/** Closes the lookup's connections. */
async function endOperation(op: Operation): Promise<void> {
    const dispatchers = [...op.dispatchers.values()];
    op.dispatchers.clear();
    await Promise.all(dispatchers.map((d) => d.destroy().catch(() => undefined)));
}

/**
 * One request attempt, bounded by undici's timeouts (`timeoutMs` to connect, for the headers,
 * then between body chunks), a wall-clock limit and a body size limit. An answer other than 2xx is read only up to
 * a small size (an error page's first bytes say enough). With `opts.stream`, a 2xx answer's
 * body is handed over unread; `wallMs` may be `Infinity` (no wall-clock limit).
 */
async function once(
    op: Operation,
    method: string,
    url: URL,
    headers: Record<string, string>,
    opts: Exchange,
    wallMs: number,
): Promise<Response> {
    const idleMs = op.endpoint.timeoutMs ?? 10_000;
    const proxy = proxyFor(url);
    const signal = Number.isFinite(wallMs) ? AbortSignal.timeout(wallMs) : undefined;
    const failure = (e: unknown): Error => {
        if ((e as Partial<RegistryError>).kind) return e as Error;
        if (signal?.aborted) {
            return new Error(`${method} ${url.pathname} did not complete within ${wallMs} ms`);
        }
        const code = String((e as { code?: unknown }).code ?? "");
        if (/^UND_ERR_(HEADERS|BODY|CONNECT)_TIMEOUT$/.test(code)) {
            return new Error(`no answer within ${idleMs} ms`);
        }
        if (proxy && /\(407\)/.test((e as Error).message)) {
            return registryError(
                `${op.name}: the proxy ${proxy.host} asks for credentials (407); give them in the proxy URL`,
                "unreachable",
            );
        }
        return e as Error;
    };
    let res: Dispatcher.ResponseData;
    try {
        res = await request(url, {
            dispatcher: dispatcherFor(op, proxy),
            method: method as Dispatcher.HttpMethod,
            headers,
            // undici sends an async iterable as it is produced (its types leave that out).
            body: opts.body as Buffer | undefined,
            signal,
            headersTimeout: idleMs,
            bodyTimeout: idleMs,
        });
    } catch (e) {
        throw failure(e);
    }
    const status = res.statusCode;
    const wanted = status >= 200 && status < 300;
    if (wanted && opts.stream) {
        return {
            status,
            headers: res.headers,
            body: Buffer.alloc(0),
            stream: bodyStream(op, method, url, res.body),
        };
    }
    const limit = wanted ? opts.maxBytes : Math.min(opts.maxBytes, SMALL_BODY_BYTES);
    const tooLarge = () =>
        registryError(
            `${op.name}: ${method} ${url.pathname} answered more than ${limit} bytes; refusing a larger answer`,
            "protocol",
        );
    const chunks: Buffer[] = [];
    try {
        // A HEAD answer's Content-Length is the size of what a GET would send (a blob's).
        const announced =
            method === "HEAD" ? 0 : Number(headerOf(res.headers, "content-length") ?? 0);
        if (wanted && announced > limit) {
            throw tooLarge();
        }
        let size = 0;
        for await (const chunk of res.body) {
            const bytes = chunk as Buffer;
            size += bytes.length;
            if (size <= limit) {
                chunks.push(bytes);
                continue;
            }
            if (wanted) throw tooLarge();
            chunks.push(bytes.subarray(0, bytes.length - (size - limit)));
            break; // leaving the loop drops the rest of the answer
        }
    } catch (e) {
        // Dropping an unfinished body makes undici emit an abort error; nothing else listens.
        res.body.on("error", () => undefined).destroy();
        throw failure(e);
    }
    return { status, headers: res.headers, body: Buffer.concat(chunks) };
}

/**
 * An answer body to read as it arrives: chunk by chunk, each within the idle timeout, however
 * long the whole takes. A failure is an "unreachable" error (the copy may try again).
 */
function bodyStream(
    op: Operation,
    method: string,
    url: URL,
    body: Dispatcher.ResponseData["body"],
): BodyStream {
    const idleMs = op.endpoint.timeoutMs ?? 10_000;
    // Dropping an unfinished body makes undici emit an abort error: the reader has the real one.
    body.on("error", () => undefined);
    async function* chunks(): AsyncGenerator<Buffer> {
        try {
            for await (const chunk of body) yield chunk as Buffer;
        } catch (e) {
            const code = String((e as { code?: unknown }).code ?? "");
            const why = /^UND_ERR_(HEADERS|BODY)_TIMEOUT$/.test(code)
                ? `no data within ${idleMs} ms`
                : (e as Error).message;
            throw registryError(
                `${op.name}: ${method} ${url.pathname} stopped after part of its answer (${why})`,
                "unreachable",
            );
        } finally {
            body.destroy();
        }
    }
    const iterator = chunks();
    return {
        [Symbol.asyncIterator]: () => iterator,
        destroy: () => {
            body.destroy();
        },
    };
}
