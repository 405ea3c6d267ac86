/**
 * The registry client against loopback servers that misbehave in the ways real registries,
 * proxies and CDNs do, where a real registry cannot be made to: strict media type negotiation,
 * a HEAD that says 404 when GET says 200, repositories hidden from anonymous requests, web pages
 * instead of registries, bad references, dripping and oversized answers. Redirects and token
 * answers: registryClient.redirects.test.ts.
 */
import { RegistryEndpoint, getImageConfig, headManifest } from "../lib/oci/client";
import {
    BASIC,
    CREDENTIALS,
    ScriptedServer,
    V2,
    manifestUnknown,
    root,
    serve,
    sha256,
    useScriptedServers,
} from "./support/misbehavingServers";
import { OCI_MANIFEST, getManifest, ociManifest } from "./support/registry";

jest.setTimeout(30_000);

const scripted = useScriptedServers(1);
let server: ScriptedServer;
beforeAll(() => ([server] = scripted));

function endpoint(overrides: Partial<RegistryEndpoint> = {}): RegistryEndpoint {
    return { apiUrl: server.url, repository: "ml/x", retries: 1, ...overrides };
}

const MANIFEST = ociManifest({ digest: sha256("{}"), size: 2 }, []);

/** A signed schema 1 manifest as distribution stores it; its digest covers the payload only. */
function signedSchema1(): { body: Buffer; digest: string } {
    const payload = JSON.stringify(
        {
            schemaVersion: 1,
            name: "ml/x",
            tag: "1.0.0",
            architecture: "amd64",
            fsLayers: [],
            history: [],
        },
        null,
        3,
    );
    const formatLength = payload.lastIndexOf("\n}");
    const protectedHeader = Buffer.from(
        JSON.stringify({
            formatLength,
            formatTail: Buffer.from(payload.slice(formatLength)).toString("base64url"),
            time: "2026-01-01T00:00:00Z",
        }),
    ).toString("base64url");
    const signatures = `,\n   "signatures": [{"header": {"alg": "ES256"}, "signature": "c2ln", "protected": "${protectedHeader}"}]\n}`;
    return {
        body: Buffer.from(payload.slice(0, formatLength) + signatures),
        digest: sha256(payload),
    };
}

describe("a 404 means absent only when a registry says so", () => {
    const artifact = Buffer.from(
        JSON.stringify({
            mediaType: "application/vnd.oci.artifact.manifest.v1+json",
            artifactType: "application/vnd.example.model",
            blobs: [],
        }),
    );
    it.each([
        [
            "a signed schema 1 manifest",
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            signedSchema1(),
        ],
        [
            "an unsigned schema 1 manifest",
            "application/vnd.docker.distribution.manifest.v1+json",
            { body: MANIFEST, digest: sha256(MANIFEST) },
        ],
        [
            "an OCI artifact manifest",
            "application/vnd.oci.artifact.manifest.v1+json",
            { body: artifact, digest: sha256(artifact) },
        ],
    ])(
        "finds %s on a registry that serves only the types the Accept header lists",
        async (_label, type, stored) => {
            server.handler = (req, res) => {
                if (root(req, res)) return;
                const accepted = (req.headers.accept ?? "")
                    .split(",")
                    .map((t) => t.split(";")[0].trim());
                const byReference = req.url?.endsWith("/1.0.0") || req.url?.endsWith(stored.digest);
                if (byReference && accepted.includes(type))
                    serve(req, res, stored.body, type, stored.digest);
                else manifestUnknown(res);
            };
            expect(await headManifest(endpoint(), "1.0.0")).toEqual({
                exists: true,
                digest: stored.digest,
                mediaType: type,
            });
            // By digest, the body is verified against it (for schema 1: its signed payload).
            expect(await getManifest(endpoint(), stored.digest)).toEqual({
                digest: stored.digest,
                mediaType: type,
                body: stored.body,
            });
            // Every type, in the order asked since the first release (a registry may serve the
            // first it can), then anything at a lower weight.
            expect(server.requests[0].headers.accept).toBe(
                [
                    "application/vnd.oci.image.index.v1+json",
                    "application/vnd.oci.image.manifest.v1+json",
                    "application/vnd.docker.distribution.manifest.list.v2+json",
                    "application/vnd.docker.distribution.manifest.v2+json",
                    "application/vnd.docker.distribution.manifest.v1+prettyjws",
                    "application/vnd.docker.distribution.manifest.v1+json",
                    "application/vnd.oci.artifact.manifest.v1+json",
                    "*/*;q=0.1",
                ].join(", "),
            );
        },
    );

    it("confirms a HEAD 404 with a GET, which finds the manifest", async () => {
        server.handler = (req, res) => {
            if (root(req, res)) return;
            if (req.method === "HEAD") manifestUnknown(res);
            else serve(req, res, MANIFEST, OCI_MANIFEST);
        };
        expect(await headManifest(endpoint(), "1.0.0")).toEqual({
            exists: true,
            digest: sha256(MANIFEST),
            mediaType: OCI_MANIFEST,
        });
        expect(server.requests.map((r) => r.method)).toEqual(["HEAD", "GET"]);
    });

    it("authenticates first when credentials are given, where anonymous requests see 404 (Basic)", async () => {
        server.handler = (req, res) => {
            if (req.headers.authorization !== BASIC) {
                if (req.url === "/v2/") {
                    res.writeHead(401, { ...V2, "WWW-Authenticate": 'Basic realm="hidden"' }).end();
                } else {
                    manifestUnknown(res); // hides the repository from strangers
                }
                return;
            }
            if (root(req, res)) return;
            serve(req, res, MANIFEST, OCI_MANIFEST);
        };
        expect(await headManifest(endpoint({ credentials: CREDENTIALS }), "1.0.0")).toMatchObject({
            exists: true,
            digest: sha256(MANIFEST),
        });
        const manifestRequests = server.requests.filter((r) => r.url.includes("/manifests/"));
        expect(manifestRequests.map((r) => r.headers.authorization)).toEqual([BASIC]);
    });

    it("authenticates first when credentials are given, where anonymous requests see 404 (Bearer)", async () => {
        server.handler = (req, res) => {
            if (req.url === "/v2/") {
                res.writeHead(401, {
                    ...V2,
                    "WWW-Authenticate": `Bearer realm="${server.url}/token",service="svc"`,
                }).end();
            } else if (req.url?.startsWith("/token")) {
                if (req.headers.authorization === BASIC) {
                    res.writeHead(200, { "Content-Type": "application/json" }).end(
                        '{"token":"t0k"}',
                    );
                } else {
                    res.writeHead(200, { "Content-Type": "application/json" }).end(
                        '{"token":"anon"}',
                    );
                }
            } else if (req.headers.authorization === "Bearer t0k") {
                serve(req, res, MANIFEST, OCI_MANIFEST);
            } else {
                manifestUnknown(res);
            }
        };
        expect(await headManifest(endpoint({ credentials: CREDENTIALS }), "1.0.0")).toMatchObject({
            exists: true,
        });
        expect(server.requests.map((r) => `${r.method} ${r.url.split("?")[0]}`)).toEqual([
            "GET /v2/",
            "GET /token",
            "HEAD /v2/ml/x/manifests/1.0.0",
        ]);
    });

    it("refuses an endpoint that is a web site, not a registry (an HTML 404 page)", async () => {
        server.handler = (_req, res) => {
            res.writeHead(404, { "Content-Type": "text/html; charset=utf-8" }).end(
                "<html><body>Page not found</body></html>",
            );
        };
        await expect(headManifest(endpoint(), "1.0.0")).rejects.toMatchObject({
            kind: "protocol",
            message: expect.stringContaining("does not look like an OCI registry API"),
        });
        await expect(headManifest(endpoint({ credentials: CREDENTIALS }), "1.0.0")).rejects.toThrow(
            `${server.url}/ is not an OCI registry API: GET /v2/ answered 404 (text/html), where a registry answers 200 or 401`,
        );
    });

    it("refuses an endpoint whose /v2/ is not a registry's, even when its 404s look like JSON", async () => {
        server.handler = (_req, res) => {
            res.writeHead(404, { "Content-Type": "application/json" }).end(
                '{"message":"Not Found"}',
            );
        };
        await expect(headManifest(endpoint(), "1.0.0")).rejects.toThrow(
            "is not an OCI registry API: GET /v2/ answered 404 (application/json)",
        );
    });
});

describe("repository paths and references are checked before any request", () => {
    beforeEach(() => {
        server.handler = (req, res) => {
            if (!root(req, res)) manifestUnknown(res);
        };
    });

    it.each([
        "ml/../../other",
        "ml/./x",
        "ML/x",
        "ml//x",
        "/ml/x",
        "ml/x/",
        "ml/x?y",
        "ml/x%2F..",
        "",
    ])("refuses the repository %j", async (repository) => {
        await expect(headManifest(endpoint({ repository }), "1.0.0")).rejects.toMatchObject({
            kind: "invalid",
            message: expect.stringContaining("is not a valid repository path"),
        });
        expect(server.requests).toEqual([]);
    });

    it.each(["..", "../../x", "a/b", "-rc", ".hidden", "1.0.0?x", "a".repeat(129), "1.0.0#x", ""])(
        "refuses the tag %j",
        async (tag) => {
            await expect(headManifest(endpoint(), tag)).rejects.toThrow("is not a valid tag");
            expect(server.requests).toEqual([]);
        },
    );

    it.each(["sha256:abc", `sha256:${"A".repeat(64)}`, `md5:${"a".repeat(32)}`, "sha256:../x"])(
        "refuses the digest %j",
        async (digest) => {
            await expect(getManifest(endpoint(), digest)).rejects.toThrow("is not a valid digest");
            expect(server.requests).toEqual([]);
        },
    );

    it.each([
        ["ftp://127.0.0.1/", "must be an http:// or https:// URL"],
        ["http://user:pw@127.0.0.1/", "must not carry credentials"],
        ["http://127.0.0.1/v2/", "must not end in /v2"],
        ["127.0.0.1:5000", "is not a URL"],
    ])("refuses the apiUrl %j", async (apiUrl, message) => {
        await expect(headManifest(endpoint({ apiUrl }), "1.0.0")).rejects.toThrow(message);
    });
});

describe("every lookup ends: deadlines and size limits", () => {
    it("ends a lookup whose answer drips one byte at a time, within the lookup's deadline", async () => {
        server.handler = (req, res) => {
            if (root(req, res)) return;
            // A HEAD without a digest makes the client GET the manifest, which never finishes.
            res.writeHead(200, { "Content-Type": OCI_MANIFEST, "Content-Length": "100000" });
            if (req.method === "HEAD") {
                res.end();
                return;
            }
            const drip = setInterval(() => res.write("{"), 100);
            res.on("close", () => clearInterval(drip));
        };
        const lookup = headManifest(
            endpoint({ requestDeadlineMs: 600, deadlineMs: 1500, retries: 3 }),
            "1.0.0",
        );
        await expect(lookup).rejects.toMatchObject({
            kind: "unreachable",
            message: expect.stringMatching(
                /did not finish the lookup within 1500 ms \(GET \/v2\/ml\/x\/manifests\/1\.0\.0 did not complete within \d+ ms; \d attempts\)/,
            ),
        });
        // No retry storm: what fits in 1.5 s, not 4 full attempts after that.
        expect(server.requests.filter((r) => r.method === "GET").length).toBeLessThanOrEqual(3);
    });

    it("ends a lookup whose headers drip", async () => {
        server.handler = (req, res) => {
            const socket = req.socket;
            socket.write("HTTP/1.1 200 OK\r\nX-Slow: ");
            const drip = setInterval(() => socket.write("a"), 100);
            socket.on("close", () => clearInterval(drip));
            res.on("close", () => clearInterval(drip));
        };
        await expect(
            headManifest(
                endpoint({ requestDeadlineMs: 500, deadlineMs: 1200, retries: 5 }),
                "1.0.0",
            ),
        ).rejects.toThrow(
            /did not finish the lookup within 1200 ms \(HEAD \/v2\/ml\/x\/manifests\/1\.0\.0 did not complete within \d+ ms/,
        );
    });

    it("refuses a manifest larger than 4 MiB, without retrying", async () => {
        const huge = Buffer.alloc(4 * 1024 * 1024 + 1, " ");
        server.handler = (req, res) => {
            if (root(req, res)) return;
            res.writeHead(200, { "Content-Type": OCI_MANIFEST }); // chunked: no length to check first
            res.end(req.method === "HEAD" ? undefined : huge);
        };
        await expect(headManifest(endpoint({ retries: 3 }), "1.0.0")).rejects.toMatchObject({
            kind: "protocol",
            message: expect.stringContaining(
                "GET /v2/ml/x/manifests/1.0.0 answered more than 4194304 bytes",
            ),
        });
        expect(server.requests.map((r) => r.method)).toEqual(["HEAD", "GET"]);
    });

    it("refuses an oversized token answer", async () => {
        server.handler = (req, res) => {
            if (req.url?.startsWith("/token")) {
                res.writeHead(200, { "Content-Type": "application/json" }).end(
                    JSON.stringify({ token: "x".repeat(300 * 1024) }),
                );
                return;
            }
            res.writeHead(401, {
                ...V2,
                "WWW-Authenticate": `Bearer realm="${server.url}/token",service="svc"`,
            }).end();
        };
        await expect(headManifest(endpoint(), "1.0.0")).rejects.toThrow(
            "GET /token answered more than 262144 bytes",
        );
    });

    it("refuses an image config larger than maxConfigBytes before fetching it", async () => {
        const config = Buffer.from(JSON.stringify({ config: { Labels: { a: "b" } } }));
        const manifest = ociManifest({ digest: sha256(config), size: config.length }, []);
        server.handler = (req, res) => {
            if (root(req, res)) return;
            if (req.url?.includes("/blobs/")) serve(req, res, config, "application/octet-stream");
            else serve(req, res, manifest, OCI_MANIFEST);
        };
        await expect(
            getImageConfig(endpoint({ maxConfigBytes: config.length - 1 }), "1.0.0"),
        ).rejects.toThrow(
            `is ${config.length} bytes, more than the ${config.length - 1}-byte limit`,
        );
        expect(server.requests.filter((r) => r.url.includes("/blobs/"))).toEqual([]);
        expect(await getImageConfig(endpoint(), "1.0.0")).toEqual({
            manifestDigest: sha256(manifest),
            configDigest: sha256(config),
            labels: { a: "b" },
        });
    });
});
