/**
 * Loopback servers for what a real registry does not do on demand during a copy: serve blobs
 * from another origin (as public.ecr.aws does from its CDN), serve a blob whose bytes do not
 * match its digest, and lose a connection in the middle of an upload. All on 127.0.0.1.
 */
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { ScriptedServer, forward, startScriptedServer } from "./misbehavingServers";
import { LocalRegistry } from "./registry";

interface CdnFront {
    /** The registry's API as the client sees it: `http://127.0.0.1:<port>`. */
    readonly front: ScriptedServer;
    /** The other origin that serves the blobs; records what reached it. */
    readonly cdn: ScriptedServer;
    stop(): Promise<void>;
}

/**
 * A front for `registry` that passes every request on, except blob GETs, which it redirects
 * (307) to a "CDN" on another port that serves the blob from the registry's storage. With
 * `corrupt`, the CDN flips the first byte of what it serves (same length, wrong content).
 */
export async function startCdnFront(
    registry: LocalRegistry,
    options: { corrupt?: boolean } = {},
): Promise<CdnFront> {
    const upstream = new URL(registry.apiUrl);
    const [front, cdn] = await Promise.all([startScriptedServer(), startScriptedServer()]);
    cdn.handler = (req, res) => {
        const m = /^\/cdn\/sha256\/([0-9a-f]{64})\?/.exec(req.url ?? "");
        const file = m
            ? path.join(
                  registry.storageDir,
                  "docker/registry/v2/blobs/sha256",
                  m[1].slice(0, 2),
                  m[1],
                  "data",
              )
            : "";
        if (!file || !fs.existsSync(file)) {
            res.writeHead(404).end();
            return;
        }
        const data = fs.readFileSync(file);
        if (options.corrupt && data.length > 0) data[0] ^= 0xff;
        res.writeHead(200, {
            "Content-Type": "application/octet-stream",
            "Content-Length": String(data.length),
        }).end(data);
    };
    front.handler = (req, res) => {
        const blob = /^\/v2\/.+\/blobs\/sha256:([0-9a-f]{64})$/.exec(req.url ?? "");
        if (req.method === "GET" && blob) {
            res.writeHead(307, {
                Location: `${cdn.url}/cdn/sha256/${blob[1]}?expires=300&signature=abc`,
            }).end();
            return;
        }
        forward(req, res, upstream);
    };
    return {
        front,
        cdn,
        stop: async () => {
            await Promise.all([front.stop(), cdn.stop()]);
        },
    };
}

interface CuttingProxy {
    /** `http://127.0.0.1:<port>`: the registry behind it. */
    readonly url: string;
    /** How many connections it cut. */
    readonly cuts: number;
    stop(): Promise<void>;
}

/**
 * A TCP forwarder to `target` (`http://127.0.0.1:<port>`) that cuts the first `times`
 * connections which carry a PATCH, once `afterBytes` of it have passed: an upload that loses
 * its connection halfway.
 */
export async function startCuttingProxy(
    target: string,
    options: { afterBytes: number; times?: number },
): Promise<CuttingProxy> {
    const port = Number(new URL(target).port);
    const state = { cuts: 0 };
    const sockets = new Set<net.Socket>();
    const server = net.createServer((client) => {
        const upstream = net.connect(port, "127.0.0.1");
        sockets.add(client);
        sockets.add(upstream);
        // Where the last PATCH request of this connection started, in bytes from the client.
        let patchAt = -1;
        let seen = 0;
        client.on("data", (chunk: Buffer) => {
            const at = chunk.lastIndexOf("PATCH /");
            if (at >= 0) patchAt = seen + at;
            seen += chunk.length;
            if (patchAt >= 0 && seen - patchAt > options.afterBytes) {
                patchAt = -1;
                if (state.cuts < (options.times ?? 1)) {
                    state.cuts++;
                    client.destroy();
                    upstream.destroy();
                    return;
                }
            }
            upstream.write(chunk);
        });
        upstream.pipe(client);
        client.on("end", () => upstream.end());
        const drop = () => {
            client.destroy();
            upstream.destroy();
            sockets.delete(client);
            sockets.delete(upstream);
        };
        client.on("error", drop);
        upstream.on("error", drop);
        client.on("close", drop);
        upstream.on("close", drop);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address() as net.AddressInfo;
    return {
        url: `http://127.0.0.1:${address.port}`,
        get cuts() {
            return state.cuts;
        },
        stop: async () => {
            const closed = new Promise((r) => server.close(r));
            for (const s of sockets) s.destroy();
            await closed;
        },
    };
}

interface PausingFront {
    /** `http://127.0.0.1:<port>`: the registry behind it. */
    readonly url: string;
    /** Resolves once the blob's answer has started and stopped: the copy is mid-stream. */
    readonly paused: Promise<void>;
    /** Lets the blob's answer go on. */
    release(): void;
    stop(): Promise<void>;
}

/**
 * A front for `registry` that passes every request on, but holds the answer to a GET of the blob
 * `digest` after its first chunk until `release()`: a layer that is streaming, stopped at a
 * moment the test chooses, so that it can act in the middle of a copy without sleeping.
 */
export async function startPausingFront(
    registry: LocalRegistry,
    digest: string,
): Promise<PausingFront> {
    const upstream = new URL(registry.apiUrl);
    const front = await startScriptedServer();
    let pausedNow = () => undefined as void;
    let releaseNow = () => undefined as void;
    const paused = new Promise<void>((r) => (pausedNow = r));
    const released = new Promise<void>((r) => (releaseNow = r));
    front.handler = (req, res) => {
        const held = req.method === "GET" && req.url?.endsWith(`/blobs/${digest}`);
        forward(req, res, upstream, {
            keepHost: true,
            answer: (up) => {
                res.writeHead(up.statusCode ?? 502, up.headers);
                if (!held || up.statusCode !== 200) {
                    up.pipe(res);
                    return;
                }
                up.once("data", (chunk: Buffer) => {
                    res.write(chunk);
                    up.pause();
                    pausedNow();
                    void released.then(() => {
                        up.pipe(res);
                        up.resume();
                    });
                });
            },
        });
    };
    return { url: front.url, paused, release: releaseNow, stop: front.stop };
}
