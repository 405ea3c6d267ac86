/**
 * Where a request goes: the registry endpoint a caller gives, refused before any request when it
 * would send requests somewhere other than what it names; the state of one lookup or session on
 * it (`Operation`); and the checks of tags, digests and repository paths.
 */
import type { Dispatcher } from "undici";
import { registryError, shown, withoutCredentials } from "./errors";

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
    /** Largest image config blob accepted. Defaults to 8 MiB. */
    readonly maxConfigBytes?: number;
}

/** One lookup or session: its endpoint, deadline, and what it learned about the registry so far. */
export interface Operation {
    readonly endpoint: RegistryEndpoint;
    readonly base: URL;
    /** The path of `apiUrl`, without a trailing slash: `""` or e.g. `/mirror`. */
    readonly prefix: string;
    /** `registry <host>, repository <path>`: how messages name it. */
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
    /** Token scopes asked for besides this repository's (a copy adds pull on a mount's source). */
    scopes: readonly string[];
    /** What the requests do to the repository: the scope a Bearer token is asked for. */
    readonly action: "pull" | "push,pull";
}

/**
 * A problem message when `apiUrl` (where the guard asks) and the server in `repositoryUri` (where
 * docker pushes) are not the same registry; `undefined` when they are. Default ports count:
 * `https://public.ecr.aws` and `public.ecr.aws/abc/x` agree.
 */
export function checkSameRegistry(apiUrl: string, repositoryUri: string): string | undefined {
    // Both may come from another stack's outputs: shown escaped, never raw.
    const uri = shown(repositoryUri);
    const named = withoutCredentials(apiUrl);
    if (!URL.canParse(apiUrl)) {
        return `apiUrl "${named}" is not a URL; expected e.g. https://public.ecr.aws`;
    }
    const api = new URL(apiUrl);
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
    const server = m && `http://${m[1]}`;
    const pushHost = server && URL.canParse(server) ? new URL(server).hostname : "";
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
 * Opens a lookup, or a session: one repository's connections and auth, kept for a job of many
 * requests (a copy). Each step of a session (`findManifest`, `sessionRequest`) renews its `deadlineMs` and is bounded as a lookup's requests are (each attempt by
 * `requestDeadlineMs`, at most `retries` more); a streamed body only by the idle timeout
 * (`timeoutMs` between chunks), however long the whole. `closeSession` closes the connections.
 * Refuses an endpoint that would send requests somewhere other than what it names; nothing is
 * sent yet.
 */
export function openSession(
    endpoint: RegistryEndpoint,
    action: Operation["action"] = "pull",
): Operation {
    const named = withoutCredentials(String(endpoint.apiUrl));
    if (!URL.canParse(endpoint.apiUrl)) {
        throw registryError(
            `apiUrl "${named}" is not a URL; expected e.g. https://public.ecr.aws`,
            "invalid",
        );
    }
    const base = new URL(endpoint.apiUrl);
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
        scopes: [],
        action,
    };
}

/** The session, its deadline renewed for the next step. */
export function step(session: Operation): Operation {
    session.deadline = Date.now() + session.deadlineMs;
    return session;
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
export function checkReference(op: { readonly name: string }, reference: string): void {
    if (typeof reference === "string" && reference.includes(":")) {
        if (!isDigest(reference)) {
            throw registryError(
                `${op.name}: ${JSON.stringify(reference)} is not a valid digest (sha256:<64 hex digits> or sha512:<128 hex digits>)`,
                "invalid",
            );
        }
    } else if (typeof reference !== "string" || !/^\w[\w.-]{0,127}$/.test(reference)) {
        throw registryError(
            `${op.name}: ${JSON.stringify(reference)} is not a valid tag: 1 to 128 letters, digits, _, . ` +
                "and -, not starting with . or -",
            "invalid",
        );
    }
}

export function isDigest(value: string): boolean {
    return /^(?:sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$/.test(value);
}
