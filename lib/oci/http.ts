/**
 * One request to a registry's server, bounded: redirects (GET and HEAD only, never from https to
 * http, the Authorization dropped off the origin), retries with backoff on server errors and
 * connection failures, an idle timeout, a wall-clock deadline per attempt and per lookup, a cap
 * on every body read, certificates always verified, proxies as Docker picks them; and reading the
 * answers (headers, the registry's error codes).
 *
 * HTTP goes through undici. Dynamic providers carry this module through Pulumi's closure
 * serialization, which keeps undici as `require("undici/index.js")`, resolved from the provider
 * host's working directory when the provider runs: the engine starts that host in the project
 * directory, where node_modules has it.
 */
import * as tls from "tls";
import { Agent, Dispatcher, ProxyAgent, request } from "undici";
import type { Operation } from "./endpoint";
import { RegistryError, registryError, shown } from "./errors";
import { proxyFor } from "./proxy";

/** Token answers, error bodies and redirects: small, whatever the server sends. */
export const SMALL_BODY_BYTES = 256 * 1024;
/** Largest manifest (or other answer a lookup reads whole): 4 MiB, the ECR manifest size limit. */
export const MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_REDIRECTS = 10;

/** What one answer was for (the request that produced it, after redirects), and what it said. */
export interface Answer {
    readonly method: string;
    readonly url: URL;
    readonly status: number;
    /** Lower-case names; a repeated header as an array. */
    readonly headers: Readonly<Record<string, string | string[] | undefined>>;
    readonly body: Buffer;
    /** A 2xx answer's body, unread, when the request asked to stream it (`body` is then empty). */
    readonly stream?: BodyStream;
}

/** What one request sends and accepts. */
export interface Exchange {
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

/** A header's value; a repeated header's first value, except for challenges (all of them). */
export function headerOf(headers: Answer["headers"], name: string): string | undefined {
    const v = headers[name];
    if (!Array.isArray(v)) return v;
    return name === "www-authenticate" ? v.join(", ") : v[0];
}

export function isHtml(res: Answer): boolean {
    return /^\s*(text\/html|application\/xhtml)/i.test(headerOf(res.headers, "content-type") ?? "");
}

export function contentTypeNote(res: Answer): string {
    const type = headerOf(res.headers, "content-type");
    return type ? ` (${shown(type.split(";")[0].trim(), 80)})` : "";
}

/** The error for an answer the protocol does not allow, with the registry's error code. */
export function unexpected(
    op: { readonly name: string },
    res: Answer,
    expected: string,
): RegistryError {
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

/**
 * A request that follows redirects (GET and HEAD only, at most MAX_REDIRECTS): never from https
 * to http, and without Authorization once it leaves the origin it was meant for.
 */
export async function exchange(
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
            return res;
        }
        if (hop >= MAX_REDIRECTS) {
            throw registryError(
                `${op.name}: more than ${MAX_REDIRECTS} redirects from ${url.href}`,
                "protocol",
            );
        }
        if (!URL.canParse(location, current.href)) {
            throw registryError(
                `${op.name}: ${current.href} redirected to an invalid URL "${shown(location)}"`,
                "protocol",
            );
        }
        const next = new URL(location, current);
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
): Promise<Answer> {
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
    const failed = outOfTime
        ? `did not finish the lookup within ${op.deadlineMs} ms (${last || "no time left"}; ${made} attempts)`
        : `cannot be reached (${last}; ${made} attempts)`;
    throw registryError(
        `${op.name}: the registry at ${url.origin} ${failed}. Check the network and the registry address; nothing was pushed.`,
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

export async function closeSession(op: Operation): Promise<void> {
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
): Promise<Answer> {
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
            method,
            url,
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
    return { method, url, status, headers: res.headers, body: Buffer.concat(chunks) };
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
