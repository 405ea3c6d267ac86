/**
 * The registry client against real registries (Debian's docker-registry, distribution 2.8): plain
 * HTTP, TLS with htpasswd (Basic), and a Bearer token realm; plus its pure parts (challenges,
 * NO_PROXY, registry names). Misbehaving servers are in registryClient.misbehaving.test.ts,
 * proxies and path prefixes in registryClient.network.test.ts.
 */
import { execFile } from "child_process";
import { createHash } from "crypto";
import * as diagnostics from "diagnostics_channel";
import * as http from "http";
import * as path from "path";
import {
    RegistryEndpoint,
    checkSameRegistry,
    getImageConfig,
    headManifest,
} from "../lib/oci/client";
import { parseChallenge } from "../lib/oci/auth";
import { proxyFor } from "../lib/oci/proxy";
import {
    LocalRegistry,
    RegistryOptions,
    getManifest,
    pushBlob,
    ociManifest,
    pushImage,
    putManifest,
    startRegistry,
} from "./support/registry";

jest.setTimeout(60_000);

function sha256(data: Buffer | string): string {
    return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/**
 * Runs `run` and returns the HTTP requests the client made meanwhile (undici publishes each on
 * a diagnostics channel), as `METHOD /path` without the query.
 */
async function recorded<T>(run: () => Promise<T>): Promise<{ result: T; requests: string[] }> {
    const requests: string[] = [];
    const listener = (message: unknown) => {
        const { request } = message as {
            request: { method: string; origin: string; path: string };
        };
        requests.push(`${request.method} ${new URL(request.path, request.origin).pathname}`);
    };
    diagnostics.subscribe("undici:request:create", listener);
    try {
        return { result: await run(), requests };
    } finally {
        diagnostics.unsubscribe("undici:request:create", listener);
    }
}

describe("parseChallenge", () => {
    it("reads a Bearer challenge as public.ecr.aws and distribution send it", () => {
        expect(
            parseChallenge(
                'Bearer realm="https://public.ecr.aws/token/",service="public.ecr.aws",scope="aws"',
            ),
        ).toEqual({
            scheme: "bearer",
            params: {
                realm: "https://public.ecr.aws/token/",
                service: "public.ecr.aws",
                scope: "aws",
            },
        });
    });

    it("reads Basic, unquoted values, spaces and escaped quotes", () => {
        expect(parseChallenge('Basic realm="registry"')).toEqual({
            scheme: "basic",
            params: { realm: "registry" },
        });
        expect(parseChallenge('bearer realm = "a\\"b" , service=svc')).toEqual({
            scheme: "bearer",
            params: { realm: 'a"b', service: "svc" },
        });
    });

    it("picks Bearer, then Basic, out of several challenges joined in one header", () => {
        const bearer = {
            scheme: "bearer",
            params: { realm: "https://auth.example/token", service: "reg, the one" },
        };
        expect(
            parseChallenge(
                'Basic realm="x", Bearer realm="https://auth.example/token",service="reg, the one"',
            ),
        ).toEqual(bearer);
        expect(
            parseChallenge(
                'Bearer realm="https://auth.example/token",service="reg, the one", Basic realm="x"',
            ),
        ).toEqual(bearer);
        expect(parseChallenge('Negotiate abc==, Basic realm="y"')).toEqual({
            scheme: "basic",
            params: { realm: "y" },
        });
    });

    it("returns nothing for schemes it does not speak", () => {
        expect(parseChallenge("Negotiate abc")).toBeUndefined();
        expect(parseChallenge("")).toBeUndefined();
    });
});

describe("proxyFor reads the proxy environment as Docker (Go's httpproxy) does", () => {
    const url = (u: string) => new URL(u);
    const env = {
        HTTPS_PROXY: "http://secure-proxy:3128",
        HTTP_PROXY: "plain-proxy:8080",
        NO_PROXY:
            "internal.example, .corp.example, *.lab.example, 10.0.0.0/8, 192.168.1.5, reg.example:5000, [fd00::1]",
    };

    it("uses HTTPS_PROXY for https, HTTP_PROXY for http, with http:// assumed", () => {
        expect(proxyFor(url("https://public.ecr.aws/v2/"), env)?.href).toBe(
            "http://secure-proxy:3128/",
        );
        expect(proxyFor(url("http://registry.example/v2/"), env)?.href).toBe(
            "http://plain-proxy:8080/",
        );
        // No fallback from https to HTTP_PROXY (Go has none), and upper case wins.
        expect(proxyFor(url("https://x.example/"), { HTTP_PROXY: "http://p:1" })).toBeUndefined();
        expect(
            proxyFor(url("https://x.example/"), {
                HTTPS_PROXY: "http://upper:1",
                https_proxy: "http://lower:1",
            })?.host,
        ).toBe("upper:1");
        expect(proxyFor(url("https://x.example/"), { https_proxy: "http://lower:1" })?.host).toBe(
            "lower:1",
        );
    });

    it("never proxies localhost or loopback addresses", () => {
        for (const u of [
            "http://localhost:5000/",
            "http://127.0.0.1:5000/",
            "http://[::1]:5000/",
        ]) {
            expect(proxyFor(url(u), env)).toBeUndefined();
        }
    });

    it("bypasses the proxy for NO_PROXY domains, IPs, CIDRs and ports", () => {
        const direct = [
            "https://internal.example/",
            "https://a.internal.example/",
            "https://a.corp.example/",
            "https://a.lab.example/",
            "https://10.1.2.3/",
            "https://192.168.1.5/",
            "http://reg.example:5000/",
            "https://[fd00::1]/",
        ];
        const proxied = [
            "https://corp.example/", // ".corp.example" is for subdomains only
            "https://lab.example/",
            "https://notinternal.example/",
            "https://11.1.2.3/",
            "http://reg.example:5001/",
            "https://[fd00::2]/",
        ];
        for (const u of direct) expect([u, proxyFor(url(u), env)]).toEqual([u, undefined]);
        for (const u of proxied)
            expect([u, proxyFor(url(u), env)?.host]).toEqual([u, expect.any(String)]);
        expect(proxyFor(url("https://anything/"), { ...env, NO_PROXY: "*" })).toBeUndefined();
        expect(
            proxyFor(url("https://a.lab.example/"), {
                ...env,
                NO_PROXY: "",
                no_proxy: "lab.example",
            }),
        ).toBeUndefined();
    });
});

describe("checkSameRegistry", () => {
    it("accepts the same registry, default ports included", () => {
        expect(checkSameRegistry("https://public.ecr.aws", "public.ecr.aws/abc/x")).toBeUndefined();
        expect(
            checkSameRegistry("https://public.ecr.aws/", "public.ecr.aws:443/abc/x"),
        ).toBeUndefined();
        expect(checkSameRegistry("http://127.0.0.1:5000", "127.0.0.1:5000/ml/x")).toBeUndefined();
        expect(
            checkSameRegistry("https://Registry.Example:443", "registry.example/a"),
        ).toBeUndefined();
        expect(checkSameRegistry("https://registry-1.docker.io", "library/ubuntu")).toBeUndefined();
    });

    it("names both registries when docker would push where the guard does not ask", () => {
        expect(
            checkSameRegistry("https://public.ecr.aws", "123.dkr.ecr.us-east-1.amazonaws.com/x"),
        ).toBe(
            "repositoryUri 123.dkr.ecr.us-east-1.amazonaws.com/x is pushed to 123.dkr.ecr.us-east-1.amazonaws.com " +
                "but apiUrl https://public.ecr.aws asks public.ecr.aws (port 443): the guard would check one registry " +
                "while docker pushes to another. Use the same registry in both " +
                "(e.g. apiUrl https://123.dkr.ecr.us-east-1.amazonaws.com).",
        );
        expect(checkSameRegistry("http://127.0.0.1:5000", "127.0.0.1:5001/ml/x")).toContain(
            "is pushed to 127.0.0.1:5001 but apiUrl http://127.0.0.1:5000 asks 127.0.0.1:5000",
        );
        expect(checkSameRegistry("http://registry.example", "registry.example:443/a")).toContain(
            "(port 80)",
        );
        expect(checkSameRegistry("https://public.ecr.aws", "abc/x")).toContain(
            "is pushed to docker.io",
        );
    });

    it("refuses what is not a registry URL or a repository URI", () => {
        expect(checkSameRegistry("public.ecr.aws", "public.ecr.aws/a")).toMatch(/not a URL/);
        expect(checkSameRegistry("ftp://public.ecr.aws", "public.ecr.aws/a")).toMatch(
            /http\(s\) URL/,
        );
        expect(checkSameRegistry("https://public.ecr.aws", "https://public.ecr.aws/a")).toMatch(
            /without a scheme/,
        );
        expect(checkSameRegistry("https://public.ecr.aws", "public.ecr.aws")).toMatch(
            /no repository path/,
        );
    });
});

/** Pushes an image whose config names `platform` and `labels`, by digest; returns its descriptor. */
async function pushPlatformImage(
    endpoint: RegistryEndpoint,
    platform: { os: string; architecture: string; variant?: string },
    labels: Record<string, string>,
) {
    const layer = Buffer.from(`layer ${JSON.stringify(platform)} ${JSON.stringify(labels)}\n`);
    const config = Buffer.from(
        JSON.stringify({
            ...platform,
            config: { Labels: labels },
            rootfs: { type: "layers", diff_ids: [sha256(layer)] },
        }),
    );
    const configDigest = await pushBlob(endpoint, config);
    const manifest = ociManifest({ digest: configDigest, size: config.length }, [
        { digest: await pushBlob(endpoint, layer), size: layer.length },
    ]);
    const digest = sha256(manifest);
    await putManifest(endpoint, digest, manifest);
    return { digest, size: manifest.length, configDigest, platform };
}

describe.each<[string, RegistryOptions]>([
    ["plain HTTP, anonymous", {}],
    ["TLS with a self-signed certificate and htpasswd (Basic)", { tls: true, auth: "htpasswd" }],
    ["a Bearer token realm", { auth: "token" }],
])("the client on a real registry: %s", (_label, options) => {
    let registry: LocalRegistry;
    let endpoint: RegistryEndpoint;
    let pushed: string;
    beforeAll(async () => {
        registry = await startRegistry(options);
        endpoint = registry.endpoint("ml/client");
        pushed = await pushImage(endpoint, "1.0.0", "client");
    });
    afterAll(async () => {
        await registry?.stop();
    });

    const manifest = "/v2/ml/client/manifests";
    // What each kind of registry costs: credentials are used from the first request on (a ping
    // learns the challenge), the token is fetched once per lookup.
    const auth = () =>
        options.auth === "token"
            ? ["GET /v2/", "GET /token"]
            : options.auth === "htpasswd"
              ? ["GET /v2/"]
              : [];

    it("finds an existing tag with the digest of exactly the bytes it serves, in as few requests as it can", async () => {
        const { result, requests } = await recorded(() => headManifest(endpoint, "1.0.0"));
        expect(result).toEqual({
            exists: true,
            digest: pushed,
            mediaType: "application/vnd.oci.image.manifest.v1+json",
        });
        expect(requests).toEqual([...auth(), `HEAD ${manifest}/1.0.0`]);
        const got = await getManifest(endpoint, "1.0.0");
        expect(got?.digest).toBe(pushed);
        expect(sha256(got?.body ?? Buffer.alloc(0))).toBe(pushed);
        expect(await headManifest(endpoint, pushed)).toMatchObject({
            exists: true,
            digest: pushed,
        });
    });

    it("reports an absent tag only after HEAD and GET said 404 on a confirmed registry", async () => {
        const { result, requests } = await recorded(() => headManifest(endpoint, "9.9.9"));
        expect(result).toEqual({ exists: false });
        expect(requests).toEqual(
            options.auth
                ? [...auth(), `HEAD ${manifest}/9.9.9`, `GET ${manifest}/9.9.9`]
                : [`HEAD ${manifest}/9.9.9`, `GET ${manifest}/9.9.9`, "GET /v2/"],
        );
        expect(await getManifest(endpoint, "9.9.9")).toBeUndefined();
    });

    it("reports an absent repository", async () => {
        expect(await headManifest(registry.endpoint("no/such/repo"), "1.0.0")).toEqual({
            exists: false,
        });
        expect(await getImageConfig(registry.endpoint("no/such/repo"), "1.0.0")).toBeUndefined();
    });

    it("reads the labels of an image's config, verified, in one manifest and one blob request", async () => {
        const { result, requests } = await recorded(() => getImageConfig(endpoint, "1.0.0"));
        const body = (await getManifest(endpoint, "1.0.0"))?.body ?? Buffer.alloc(0);
        const configDigest = (JSON.parse(body.toString()) as { config: { digest: string } }).config
            .digest;
        expect(result).toEqual({
            manifestDigest: pushed,
            configDigest,
            labels: { seed: "client" },
        });
        expect(requests).toEqual([
            ...auth(),
            `GET ${manifest}/1.0.0`,
            `GET /v2/ml/client/blobs/${configDigest}`,
        ]);
    });

    it("resolves an image index to the manifest for a platform", async () => {
        const amd64 = await pushPlatformImage(
            endpoint,
            { os: "linux", architecture: "amd64" },
            { "org.opencontainers.image.version": "2.0.0", arch: "amd64" },
        );
        const arm64 = await pushPlatformImage(
            endpoint,
            { os: "linux", architecture: "arm64" },
            { arch: "arm64" },
        );
        // BuildKit's attestation manifests sit in the index as platform unknown/unknown.
        const attestation = await pushPlatformImage(
            endpoint,
            { os: "unknown", architecture: "unknown" },
            {},
        );
        const index = (entries: (typeof amd64)[]) =>
            Buffer.from(
                JSON.stringify({
                    schemaVersion: 2,
                    mediaType: "application/vnd.oci.image.index.v1+json",
                    manifests: entries.map((e) => ({
                        mediaType: "application/vnd.oci.image.manifest.v1+json",
                        digest: e.digest,
                        size: e.size,
                        platform: e.platform,
                    })),
                }),
            );
        const mediaType = "application/vnd.oci.image.index.v1+json";
        await putManifest(endpoint, "2.0.0", index([amd64, arm64, attestation]), mediaType);
        await putManifest(endpoint, "2.0.0-arm", index([arm64, attestation]), mediaType);

        expect(await getImageConfig(endpoint, "2.0.0")).toEqual({
            manifestDigest: amd64.digest,
            configDigest: amd64.configDigest,
            labels: { "org.opencontainers.image.version": "2.0.0", arch: "amd64" },
        });
        for (const platform of ["linux/arm64", "linux/arm64/v8"]) {
            expect(await getImageConfig(endpoint, "2.0.0", platform)).toMatchObject({
                manifestDigest: arm64.digest,
                labels: { arch: "arm64" },
            });
        }
        expect(await getImageConfig(endpoint, "2.0.0-arm")).toMatchObject({
            manifestDigest: arm64.digest,
        });
        await expect(getImageConfig(endpoint, "2.0.0", "windows/amd64")).rejects.toThrow(
            "the index 2.0.0 has no image for windows/amd64 (it has: linux/amd64, linux/arm64)",
        );
        await expect(getImageConfig(endpoint, "2.0.0", "linux")).rejects.toThrow(
            'platform "linux" is not os/arch[/variant]',
        );
        expect((await headManifest(endpoint, "2.0.0")).exists).toBe(true);
    });

    if (options.auth) {
        it("refuses with a clear message when the credentials are wrong", async () => {
            const wrong = registry.endpoint("ml/client", {
                credentials: { username: "publisher", password: "wrong" },
            });
            await expect(headManifest(wrong, "1.0.0")).rejects.toThrow(
                options.auth === "token"
                    ? /the token service 127\.0\.0\.1:\d+ refused the credentials \(401\)/
                    : /the registry refused the credentials \(401 on HEAD \/v2\/ml\/client\/manifests\/1\.0\.0\)/,
            );
        });
    }

    if (options.tls) {
        it("verifies certificates even when NODE_TLS_REJECT_UNAUTHORIZED=0 is set process-wide", async () => {
            // In a process of its own: jest gives a test file a copy of process.env, which
            // Node's TLS never reads.
            const untrusted = registry.endpoint("ml/client", {
                caCertificate: undefined,
                retries: 0,
            });
            const project = path.resolve(__dirname, "..");
            const script = [
                `require(${JSON.stringify(require.resolve("ts-node"))}).register({ transpileOnly: true, project: ${JSON.stringify(path.join(project, "tsconfig.json"))} });`,
                `const { headManifest } = require(${JSON.stringify(path.join(project, "lib/oci/client"))});`,
                'headManifest(JSON.parse(process.argv[1]), "1.0.0").then(',
                "    (found) => console.log(JSON.stringify(found)),",
                "    (e) => console.log(JSON.stringify({ kind: e.kind, message: e.message })),",
                ");",
            ].join("\n");
            const stdout = await new Promise<string>((resolve, reject) =>
                execFile(
                    process.execPath,
                    ["-e", script, JSON.stringify(untrusted)],
                    { env: { ...process.env, NODE_TLS_REJECT_UNAUTHORIZED: "0" } },
                    (err, out) => (err ? reject(err) : resolve(out)),
                ),
            );
            expect(JSON.parse(stdout)).toEqual({
                kind: "tls",
                message: expect.stringContaining("is not trusted (self-signed certificate"),
            });
        });
    }
});

/**
 * Protocol behaviours no real registry shows on demand (a 503, a missing digest header), served
 * by a minimal loopback server that answers `/v2/` as a registry and the rest as each test needs.
 */
describe("headManifest protocol edges", () => {
    let server: http.Server;
    let url = "";
    let handler: (req: http.IncomingMessage, res: http.ServerResponse) => void = () => undefined;
    beforeAll(async () => {
        server = http.createServer((req, res) => {
            if (req.url === "/v2/") {
                res.writeHead(200, { "Docker-Distribution-API-Version": "registry/2.0" }).end("{}");
                return;
            }
            handler(req, res);
        });
        await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
        url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    });
    afterAll(async () => {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
    });

    it("retries 503 answers, then takes the registry's answer", async () => {
        let calls = 0;
        handler = (_req, res) => {
            calls++;
            res.writeHead(calls <= 2 ? 503 : 404).end();
        };
        await expect(
            headManifest({ apiUrl: url, repository: "ml/x", retries: 3 }, "1.0.0"),
        ).resolves.toEqual({
            exists: false,
        });
        // Two 503s and the HEAD's 404, then the GET that confirms it.
        expect(calls).toBe(4);
    });

    it("gives up after the bounded retries with a clear error", async () => {
        let calls = 0;
        handler = (_req, res) => {
            calls++;
            res.writeHead(500).end();
        };
        await expect(
            headManifest({ apiUrl: url, repository: "ml/x", retries: 2 }, "1.0.0"),
        ).rejects.toThrow(
            /cannot be reached \(HEAD \/v2\/ml\/x\/manifests\/1\.0\.0 answered 500; 3 attempts\)/,
        );
        expect(calls).toBe(3);
    });

    it("hashes the manifest when a HEAD answer has no digest header", async () => {
        const manifest = Buffer.from('{"schemaVersion":2}');
        handler = (req, res) => {
            res.writeHead(200, { "Content-Type": "application/vnd.oci.image.manifest.v1+json" });
            res.end(req.method === "GET" ? manifest : undefined);
        };
        expect(await headManifest({ apiUrl: url, repository: "ml/x" }, "1.0.0")).toEqual({
            exists: true,
            digest: sha256(manifest),
            mediaType: "application/vnd.oci.image.manifest.v1+json",
        });
    });

    it("refuses a manifest whose bytes do not match the digest asked for", async () => {
        const manifest = Buffer.from('{"schemaVersion":2}');
        const other = sha256("something else");
        handler = (_req, res) => {
            res.writeHead(200, { "Content-Type": "application/vnd.oci.image.manifest.v1+json" });
            res.end(manifest);
        };
        await expect(getManifest({ apiUrl: url, repository: "ml/x" }, other)).rejects.toThrow(
            `the registry served content for ${other} that hashes to ${sha256(manifest)}`,
        );
    });

    it("times out a registry that does not answer", async () => {
        handler = () => undefined; // never answers
        await expect(
            headManifest({ apiUrl: url, repository: "ml/x", retries: 0, timeoutMs: 300 }, "1.0.0"),
        ).rejects.toThrow(/no answer within 300 ms/);
    });
});
