/**
 * Auth, as Docker's client speaks it: confirming that the endpoint is a registry (`GET /v2/`,
 * which also learns the challenge), answering a 401 once (Basic with the credentials, or Bearer
 * with a token from the challenge's realm), renewing an expired token, and the origin checks:
 * the Authorization and the credentials go only to the registry's own origin and the token
 * service its own 401 names, never in clear text to another host.
 */
import type { Operation } from "./endpoint";
import { registryError, shown } from "./errors";
import {
    Answer,
    Exchange,
    SMALL_BODY_BYTES,
    contentTypeNote,
    exchange,
    headerOf,
    isHtml,
} from "./http";
import { isLoopbackHost } from "./proxy";

/**
 * Confirms that the endpoint is a registry: `GET /v2/` answers 200 or 401 (and says
 * `registry/2.0` if it sends Docker-Distribution-API-Version). Learns the auth challenge on the
 * way; with credentials, prepares the Authorization for the requests that follow.
 */
export async function confirmRegistry(op: Operation): Promise<void> {
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
        op.authorization = await authorize(op, res);
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
export async function authorized(
    op: Operation,
    method: string,
    path: string | URL,
    headers: Record<string, string>,
    opts: Exchange,
): Promise<Answer> {
    if (op.endpoint.credentials && !op.confirmed) await confirmRegistry(op);
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
        op.authorization = await authorize(op, res);
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
async function authorize(op: Operation, res: Answer): Promise<string> {
    const header = headerOf(res.headers, "www-authenticate") ?? "";
    const challenge = parseChallenge(header);
    if (challenge?.scheme === "bearer") return `Bearer ${await fetchToken(op, challenge.params)}`;
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

async function fetchToken(
    op: Operation,
    params: Readonly<Record<string, string>>,
): Promise<string> {
    if (!params.realm) {
        throw registryError(`${op.name}: Bearer challenge without a realm`, "auth");
    }
    if (!URL.canParse(params.realm, op.base.href)) {
        throw registryError(
            `${op.name}: the Bearer realm "${shown(params.realm)}" is not a URL`,
            "auth",
        );
    }
    const url = new URL(params.realm, op.base);
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
    // challenge's own scope when it names another (the token spec allows several), and the
    // session's others, each once.
    const needed = `repository:${op.endpoint.repository}:${op.action}`;
    for (const scope of new Set([needed, params.scope, ...op.scopes])) {
        if (scope) url.searchParams.append("scope", scope);
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

function registryUrl(op: Operation, path: string): URL {
    return new URL(`${op.base.origin}${op.prefix}${path}`);
}
