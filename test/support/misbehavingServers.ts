/**
 * Loopback servers for what a real registry does not do on demand: a scripted HTTP(S) server that
 * records every request (with the pieces of a registry's answers to script it with), a
 * forward/CONNECT proxy that counts what it carries, and a reverse proxy that puts a path prefix,
 * TLS or redirects in front of a real registry. All on 127.0.0.1.
 */
import { createHash } from "crypto";
import * as fs from "fs";
import * as http from "http";
import * as https from "https";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { selfSignedCertificate } from "./registry";

interface RecordedRequest {
    readonly method: string;
    readonly url: string;
    readonly headers: http.IncomingHttpHeaders;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export interface ScriptedServer {
    /** `http(s)://127.0.0.1:<port>` */
    readonly url: string;
    readonly port: number;
    /** PEM of the self-signed certificate, for TLS servers. */
    readonly caCertificate?: string;
    /** Every request, in order. */
    readonly requests: RecordedRequest[];
    /** What answers the next requests. */
    handler: Handler;
    stop(): Promise<void>;
}

export function sha256(data: Buffer | string): string {
    return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** What a registry says on every answer. */
export const V2 = { "Docker-Distribution-API-Version": "registry/2.0" };
export const CREDENTIALS = { username: "publisher", password: "s3cret" };
/** The Authorization for CREDENTIALS. */
export const BASIC = `Basic ${Buffer.from("publisher:s3cret").toString("base64")}`;

/** Answers `GET /v2/` as an open registry does; true when it did. */
export function root(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    if (req.url !== "/v2/") return false;
    res.writeHead(200, { ...V2, "Content-Type": "application/json" }).end("{}");
    return true;
}

/** A registry's 404 for a manifest it does not have. */
export function manifestUnknown(res: http.ServerResponse): void {
    res.writeHead(404, { ...V2, "Content-Type": "application/json" }).end(
        JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] }),
    );
}

/** Serves `body` as a registry serves a manifest or blob, with its digest unless told otherwise. */
export function serve(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    body: Buffer,
    type: string,
    digest: string | undefined = sha256(body),
): void {
    res.writeHead(200, {
        "Content-Type": type,
        "Content-Length": String(body.length),
        ...(digest ? { "Docker-Content-Digest": digest } : {}),
    });
    res.end(req.method === "HEAD" ? undefined : body);
}

/** A self-signed certificate for `127.0.0.1` and the given DNS names. */
export function certificate(names: string[] = []): { cert: string; key: string } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "misbehaving-cert-"));
    try {
        const { cert, key } = selfSignedCertificate(dir, "server", names);
        return { cert, key };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

async function listen(server: net.Server): Promise<number> {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return (server.address() as net.AddressInfo).port;
}

/** Closes a server and every connection it still has (a dripping answer, a tunnel). */
function stopper(server: net.Server): () => Promise<void> {
    const sockets = new Set<net.Socket>();
    server.on("connection", (s: net.Socket) => {
        sockets.add(s);
        s.on("close", () => sockets.delete(s));
    });
    server.on("secureConnection", (s: net.Socket) => {
        sockets.add(s);
        s.on("close", () => sockets.delete(s));
    });
    return async () => {
        const closed = new Promise((r) => server.close(r));
        for (const s of sockets) s.destroy();
        await closed;
    };
}

/**
 * Scripted servers for the tests of one file: started before them, their requests cleared before
 * each, stopped after them. The list fills in once they have started.
 */
export function useScriptedServers(count: number): readonly ScriptedServer[] {
    const servers: ScriptedServer[] = [];
    beforeAll(async () => {
        for (let i = 0; i < count; i++) servers.push(await startScriptedServer());
    });
    afterAll(async () => {
        await Promise.all(servers.map((s) => s.stop()));
    });
    beforeEach(() => {
        for (const s of servers) s.requests.length = 0;
    });
    return servers;
}

/** A server whose answers the test scripts through `handler`; it records every request. */
export async function startScriptedServer(
    options: { tls?: { names?: string[] } } = {},
): Promise<ScriptedServer> {
    const requests: RecordedRequest[] = [];
    const tlsMaterial = options.tls ? certificate(options.tls.names) : undefined;
    const scripted: { handler: Handler } = {
        handler: (_req, res) => {
            res.writeHead(500).end();
        },
    };
    const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
        requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers });
        scripted.handler(req, res);
    };
    const server = tlsMaterial
        ? https.createServer({ cert: tlsMaterial.cert, key: tlsMaterial.key }, listener)
        : http.createServer(listener);
    const stop = stopper(server);
    const port = await listen(server);
    return {
        url: `${tlsMaterial ? "https" : "http"}://127.0.0.1:${port}`,
        port,
        caCertificate: tlsMaterial?.cert,
        requests,
        get handler() {
            return scripted.handler;
        },
        set handler(h: Handler) {
            scripted.handler = h;
        },
        stop,
    };
}

export interface CountingProxy {
    /** `http://127.0.0.1:<port>` */
    readonly url: string;
    /** What it carried: `CONNECT host:port` or `GET http://host:port/path`. */
    readonly carried: string[];
    /** The Proxy-Authorization header of each request, in order. */
    readonly proxyAuthorizations: (string | undefined)[];
    stop(): Promise<void>;
}

/**
 * A forward proxy (absolute-URL requests for http://) and CONNECT tunnel (for https://) that
 * sends every host name to 127.0.0.1: a name such as `registry.invalid`, which no DNS resolves,
 * reaches the loopback server only through this proxy.
 */
export async function startCountingProxy(): Promise<CountingProxy> {
    const carried: string[] = [];
    const proxyAuthorizations: (string | undefined)[] = [];
    const server = http.createServer((req, res) => {
        carried.push(`${req.method} ${req.url}`);
        proxyAuthorizations.push(req.headers["proxy-authorization"]);
        let target: URL;
        try {
            target = new URL(req.url ?? "");
        } catch {
            res.writeHead(400).end("absolute URL expected");
            return;
        }
        const headers = { ...req.headers };
        delete headers["proxy-authorization"];
        delete headers["proxy-connection"];
        const upstream = http.request(
            {
                host: "127.0.0.1",
                port: Number(target.port || 80),
                method: req.method,
                path: `${target.pathname}${target.search}`,
                headers,
            },
            (up) => {
                res.writeHead(up.statusCode ?? 502, up.headers);
                up.pipe(res);
            },
        );
        upstream.on("error", () => res.writeHead(502).end());
        req.pipe(upstream);
    });
    server.on("connect", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
        carried.push(`CONNECT ${req.url}`);
        proxyAuthorizations.push(req.headers["proxy-authorization"]);
        const port = Number(/:(\d+)$/.exec(req.url ?? "")?.[1] ?? 443);
        const upstream = net.connect(port, "127.0.0.1", () => {
            socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
            if (head.length > 0) upstream.write(head);
            upstream.pipe(socket);
            socket.pipe(upstream);
        });
        upstream.on("error", () => socket.destroy());
        socket.on("error", () => upstream.destroy());
        socket.on("close", () => upstream.destroy());
    });
    const stop = stopper(server);
    const port = await listen(server);
    return { url: `http://127.0.0.1:${port}`, carried, proxyAuthorizations, stop };
}

interface ReverseProxyOptions {
    /** Serves the registry under this path; anything else gets an HTML 404 page. */
    readonly prefix?: string;
    /** Speaks TLS with a self-signed certificate for 127.0.0.1 and these names. */
    readonly tlsNames?: string[];
    /** Answers manifest requests with a 307 to the same URL under `/moved` (same origin). */
    readonly redirectManifests?: boolean;
}

/**
 * Passes `req` on to the plain-HTTP server `upstream`, at `path` (by default the request's own),
 * and its answer back as it comes, or to `answer`; a failed connection answers 502. The Host
 * header names `upstream`, unless `keepHost` (the registry's upload locations then point back at
 * the server that forwards).
 */
export function forward(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    upstream: URL,
    options: {
        readonly path?: string;
        readonly keepHost?: boolean;
        readonly answer?: (up: http.IncomingMessage) => void;
    } = {},
): void {
    const request = http.request(
        {
            host: upstream.hostname,
            port: Number(upstream.port),
            method: req.method,
            path: options.path ?? req.url,
            headers: options.keepHost ? req.headers : { ...req.headers, host: upstream.host },
        },
        options.answer ??
            ((up) => {
                res.writeHead(up.statusCode ?? 502, up.headers);
                up.pipe(res);
            }),
    );
    request.on("error", () => res.writeHead(502).end());
    req.pipe(request);
}

/** A reverse proxy in front of a plain-HTTP registry at `target` (`http://127.0.0.1:<port>`). */
export async function startReverseProxy(
    target: string,
    options: ReverseProxyOptions = {},
): Promise<ScriptedServer> {
    const server = await startScriptedServer(
        options.tlsNames ? { tls: { names: options.tlsNames } } : {},
    );
    const upstream = new URL(target);
    const prefix = options.prefix ?? "";
    server.handler = (req, res) => {
        let p = req.url ?? "/";
        if (prefix) {
            if (!p.startsWith(`${prefix}/`)) {
                res.writeHead(404, { "Content-Type": "text/html" }).end(
                    "<html><body><h1>Not Found</h1></body></html>",
                );
                return;
            }
            p = p.slice(prefix.length);
        }
        if (p.startsWith("/moved/")) {
            p = p.slice("/moved".length);
        } else if (options.redirectManifests && /^\/v2\/.+\/manifests\/[^/]+$/.test(p)) {
            res.writeHead(307, { Location: `${prefix}/moved${p}` }).end();
            return;
        }
        forward(req, res, upstream, { path: p });
    };
    return server;
}
