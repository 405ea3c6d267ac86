/**
 * The registry client against loopback servers that redirect (within the registry's origin, to
 * another, to plain HTTP, endlessly, to a CDN) and that answer token requests oddly: what it
 * follows, where the credentials go, and what it refuses.
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
    startScriptedServer,
    useScriptedServers,
} from "./support/misbehavingServers";
import { OCI_MANIFEST, ociManifest } from "./support/registry";

jest.setTimeout(30_000);

const scripted = useScriptedServers(2);
let server: ScriptedServer;
let other: ScriptedServer;
beforeAll(() => ([server, other] = scripted));

function endpoint(overrides: Partial<RegistryEndpoint> = {}): RegistryEndpoint {
    return { apiUrl: server.url, repository: "ml/x", retries: 1, ...overrides };
}

const MANIFEST = ociManifest({ digest: sha256("{}"), size: 2 }, []);

describe("redirects", () => {
    /** A registry that wants Basic credentials and sends manifest requests to `location`. */
    function redirectingRegistry(status: number, location: (ref: string) => string) {
        server.handler = (req, res) => {
            if (req.headers.authorization !== BASIC) {
                res.writeHead(401, { ...V2, "WWW-Authenticate": 'Basic realm="r"' }).end();
                return;
            }
            if (root(req, res)) return;
            const m = /\/manifests\/([^/]+)$/.exec(req.url ?? "");
            if (req.url?.startsWith("/v2/") && m) {
                res.writeHead(status, { Location: location(m[1]) }).end();
            } else if (req.url?.startsWith("/moved/")) {
                serve(req, res, MANIFEST, OCI_MANIFEST);
            } else {
                manifestUnknown(res);
            }
        };
    }

    it("follows a manifest redirect within the registry's origin, with the credentials", async () => {
        redirectingRegistry(307, (ref) => `/moved/${ref}`);
        expect(await headManifest(endpoint({ credentials: CREDENTIALS }), "1.0.0")).toMatchObject({
            exists: true,
            digest: sha256(MANIFEST),
        });
        const moved = server.requests.filter((r) => r.url.startsWith("/moved/"));
        expect(moved.map((r) => r.headers.authorization)).toEqual([BASIC]);
    });

    it("follows a manifest redirect to another origin without the Authorization header", async () => {
        redirectingRegistry(302, (ref) => `${other.url}/cdn/${ref}?sig=1`);
        other.handler = (req, res) => serve(req, res, MANIFEST, OCI_MANIFEST);
        expect(await headManifest(endpoint({ credentials: CREDENTIALS }), "1.0.0")).toMatchObject({
            exists: true,
            digest: sha256(MANIFEST),
        });
        expect(other.requests.length).toBeGreaterThan(0);
        expect(other.requests.map((r) => r.headers.authorization)).toEqual(
            other.requests.map(() => undefined),
        );
    });

    it("never follows an https registry's redirect to plain http", async () => {
        const secure = await startScriptedServer({ tls: {} });
        try {
            secure.handler = (req, res) => {
                if (root(req, res)) return;
                res.writeHead(302, { Location: `${other.url}/v2/ml/x/manifests/1.0.0` }).end();
            };
            await expect(
                headManifest(
                    endpoint({ apiUrl: secure.url, caCertificate: secure.caCertificate }),
                    "1.0.0",
                ),
            ).rejects.toThrow(
                `redirected HEAD /v2/ml/x/manifests/1.0.0 to plain-HTTP ${other.url}; an https request is never downgraded`,
            );
            expect(other.requests).toEqual([]);
        } finally {
            await secure.stop();
        }
    });

    it("stops after a bounded number of redirects", async () => {
        server.handler = (req, res) => {
            if (root(req, res)) return;
            res.writeHead(302, { Location: req.url ?? "/" }).end();
        };
        await expect(headManifest(endpoint(), "1.0.0")).rejects.toThrow("more than 10 redirects");
        expect(server.requests.length).toBe(11);
    });

    it("follows a redirect of the token realm; to another origin, without the credentials", async () => {
        let tokenLocation = "/token2";
        server.handler = (req, res) => {
            if (req.url?.startsWith("/token2")) {
                const token = req.headers.authorization === BASIC ? "good" : "none";
                res.writeHead(200, { "Content-Type": "application/json" }).end(
                    JSON.stringify({ token }),
                );
            } else if (req.url?.startsWith("/token")) {
                res.writeHead(302, { Location: tokenLocation }).end();
            } else if (
                req.headers.authorization === "Bearer good" ||
                req.headers.authorization === "Bearer anonymous"
            ) {
                if (!root(req, res)) serve(req, res, MANIFEST, OCI_MANIFEST);
            } else {
                res.writeHead(401, {
                    ...V2,
                    "WWW-Authenticate": `Bearer realm="${server.url}/token",service="svc"`,
                }).end();
            }
        };
        expect(await headManifest(endpoint({ credentials: CREDENTIALS }), "1.0.0")).toMatchObject({
            exists: true,
        });
        // Another origin gets no credentials: here it hands out an anonymous token.
        tokenLocation = `${other.url}/token`;
        other.handler = (req, res) =>
            res.writeHead(200, { "Content-Type": "application/json" }).end('{"token":"anonymous"}');
        expect(await headManifest(endpoint({ credentials: CREDENTIALS }), "1.0.0")).toMatchObject({
            exists: true,
        });
        expect(other.requests.map((r) => r.headers.authorization)).toEqual([undefined]);
    });

    it("reads a config blob that the registry redirects to a CDN, without sending it the credentials", async () => {
        const config = Buffer.from(
            JSON.stringify({
                architecture: "amd64",
                os: "linux",
                config: { Labels: { version: "1.0.0" } },
            }),
        );
        const manifest = ociManifest({ digest: sha256(config), size: config.length }, []);
        let cdnBody = config;
        server.handler = (req, res) => {
            if (req.headers.authorization !== BASIC) {
                res.writeHead(401, { ...V2, "WWW-Authenticate": 'Basic realm="r"' }).end();
            } else if (root(req, res)) {
                return;
            } else if (req.url?.includes("/blobs/")) {
                res.writeHead(307, {
                    Location: `${other.url}/blob/${sha256(config).slice(7)}?sig=x`,
                }).end();
            } else {
                serve(req, res, manifest, OCI_MANIFEST);
            }
        };
        other.handler = (_req, res) => {
            res.writeHead(200, { "Content-Type": "application/octet-stream" }).end(cdnBody);
        };
        expect(await getImageConfig(endpoint({ credentials: CREDENTIALS }), "1.0.0")).toEqual({
            manifestDigest: sha256(manifest),
            configDigest: sha256(config),
            labels: { version: "1.0.0" },
        });
        expect(other.requests.map((r) => r.headers.authorization)).toEqual([undefined]);
        // A CDN serving other bytes is caught by the digest.
        cdnBody = Buffer.from(JSON.stringify({ config: { Labels: { version: "evil" } } }));
        await expect(
            getImageConfig(endpoint({ credentials: CREDENTIALS }), "1.0.0"),
        ).rejects.toThrow(
            `the registry served content for ${sha256(config)} that hashes to ${sha256(cdnBody)}`,
        );
    });
});

describe("token answers and challenges", () => {
    /** A Bearer registry whose realm answers `tokenAnswer` and which accepts `Bearer x`. */
    function bearerRegistry(challenge: string | string[], tokenAnswer: string) {
        server.handler = (req, res) => {
            if (req.url?.startsWith("/token")) {
                res.writeHead(200, { "Content-Type": "application/json" }).end(tokenAnswer);
            } else if (req.headers.authorization === "Bearer x") {
                if (!root(req, res)) serve(req, res, MANIFEST, OCI_MANIFEST);
            } else {
                res.writeHead(401, { ...V2, "WWW-Authenticate": challenge }).end();
            }
        };
    }

    it("uses the first non-empty of token and access_token", async () => {
        bearerRegistry(
            `Bearer realm="${server.url}/token",service="svc"`,
            '{"token":"","access_token":"x"}',
        );
        expect(await headManifest(endpoint(), "1.0.0")).toMatchObject({ exists: true });
        bearerRegistry(`Bearer realm="${server.url}/token"`, '{"access_token":"x"}');
        expect(await headManifest(endpoint(), "1.0.0")).toMatchObject({ exists: true });
        bearerRegistry(`Bearer realm="${server.url}/token"`, '{"token":"","access_token":""}');
        await expect(headManifest(endpoint(), "1.0.0")).rejects.toThrow("sent no token");
    });

    it.each([
        [
            "Basic first",
            (realm: string) => `Basic realm="x", Bearer realm="${realm}",service="svc"`,
        ],
        [
            "Bearer first",
            (realm: string) => `Bearer realm="${realm}",service="svc", Basic realm="x"`,
        ],
        [
            "two headers",
            (realm: string) => ['Basic realm="x"', `Bearer realm="${realm}",service="svc"`],
        ],
    ])("answers the Bearer challenge among several (%s)", async (_label, challenge) => {
        bearerRegistry(challenge(`${server.url}/token`), '{"token":"x"}');
        expect(await headManifest(endpoint({ credentials: CREDENTIALS }), "1.0.0")).toMatchObject({
            exists: true,
        });
        const tokenRequest = server.requests.find((r) => r.url.startsWith("/token"));
        expect(tokenRequest?.headers.authorization).toBe(BASIC);
    });

    it("never sends credentials to a plain-HTTP token realm of an https registry", async () => {
        const secure = await startScriptedServer({ tls: {} });
        try {
            secure.handler = (_req, res) => {
                res.writeHead(401, {
                    ...V2,
                    "WWW-Authenticate": `Bearer realm="${other.url}/token",service="svc"`,
                }).end();
            };
            other.handler = (_req, res) =>
                res.writeHead(200, { "Content-Type": "application/json" }).end('{"token":"x"}');
            await expect(
                headManifest(
                    endpoint({
                        apiUrl: secure.url,
                        caCertificate: secure.caCertificate,
                        credentials: CREDENTIALS,
                    }),
                    "1.0.0",
                ),
            ).rejects.toMatchObject({
                kind: "auth",
                message: expect.stringContaining(
                    `the registry names a plain-HTTP token service (${other.url}); the credentials are not sent there unencrypted`,
                ),
            });
            expect(other.requests).toEqual([]);
        } finally {
            await secure.stop();
        }
    });
});
