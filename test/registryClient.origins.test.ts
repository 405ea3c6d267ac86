/**
 * Where the registry client sends credentials, and what it repeats of what servers and users
 * sent: the credentials go only to the registry's own origin and to a token realm that a 401
 * from that origin names (never cleartext to another host); a 401 from anywhere a redirect led is
 * refused, in lookups and on both sides of a copy; server text in errors is escaped and bounded;
 * a password in apiUrl or a proxy variable is never echoed. Loopback servers, and a real registry
 * (Debian's docker-registry, distribution 2.8) where a copy needs one.
 */
import { RegistryEndpoint, checkSameRegistry, headManifest } from "../lib/oci/client";
import { proxyFor } from "../lib/oci/proxy";
import { copyImage } from "../lib/oci/copy";
import {
    CREDENTIALS,
    CountingProxy,
    ScriptedServer,
    V2,
    root,
    sha256,
    startCountingProxy,
    useScriptedServers,
} from "./support/misbehavingServers";
import {
    LocalRegistry,
    getManifest,
    ociManifest,
    pushImage,
    startRegistry,
} from "./support/registry";

jest.setTimeout(60_000);

const scripted = useScriptedServers(3);
let server: ScriptedServer;
let cdn: ScriptedServer;
let realm: ScriptedServer;
let registry: LocalRegistry;
beforeAll(async () => {
    [server, cdn, realm] = scripted;
    registry = await startRegistry();
    // Whatever reaches it, the realm hands out a token.
    realm.handler = (_req, res) =>
        res.writeHead(200, { "Content-Type": "application/json" }).end('{"token":"t"}');
    // Another origin that asks for credentials, naming the realm.
    cdn.handler = (_req, res) =>
        res.writeHead(401, { "WWW-Authenticate": `Bearer realm="${realm.url}/token"` }).end();
});
afterAll(async () => {
    await registry?.stop();
});

function endpoint(overrides: Partial<RegistryEndpoint> = {}): RegistryEndpoint {
    return { apiUrl: server.url, repository: "ml/x", retries: 0, ...overrides };
}

/** The refusal of a 401 from the other origin. */
const refused = () => ({
    kind: "auth",
    message: expect.stringContaining(`was redirected to ${cdn.url}`),
});

/** Nothing reached the realm, and the other origin never saw an Authorization. */
function expectNoCredentialsOffOrigin(): void {
    expect(realm.requests).toEqual([]);
    expect(cdn.requests.length).toBeGreaterThan(0);
    expect(cdn.requests.filter((r) => r.headers.authorization)).toEqual([]);
}

describe("a 401 from an origin a redirect led to is never answered with credentials", () => {
    it("in a lookup on an http registry with an open /v2/ (the guard's and the record's)", async () => {
        server.handler = (req, res) => {
            if (!root(req, res)) res.writeHead(302, { Location: `${cdn.url}/m` }).end();
        };
        await expect(
            headManifest(endpoint({ credentials: CREDENTIALS }), "1.0.0"),
        ).rejects.toMatchObject(refused());
        expectNoCredentialsOffOrigin();
    });

    it("when the registry's /v2/ itself redirects to it", async () => {
        server.handler = (_req, res) => res.writeHead(307, { Location: `${cdn.url}/v2/` }).end();
        await expect(
            headManifest(endpoint({ credentials: CREDENTIALS }), "1.0.0"),
        ).rejects.toMatchObject(refused());
        expectNoCredentialsOffOrigin();
    });

    it("on a copy's source: a blob redirected to another origin that asks for credentials", async () => {
        const config = Buffer.from("{}");
        const manifest = ociManifest({ digest: sha256(config), size: config.length }, []);
        server.handler = (req, res) => {
            if (root(req, res)) return;
            if (req.url?.includes("/blobs/")) {
                res.writeHead(307, { Location: `${cdn.url}/blob` }).end();
                return;
            }
            res.writeHead(200, {
                "Content-Type": "application/vnd.oci.image.manifest.v1+json",
                "Docker-Content-Digest": sha256(manifest),
            }).end(req.method === "HEAD" ? undefined : manifest);
        };
        const copy = copyImage(
            endpoint({ credentials: CREDENTIALS }),
            "1.0.0",
            registry.endpoint("prod/src-side"),
            "1.0.0",
        );
        await expect(copy).rejects.toMatchObject(refused());
        expectNoCredentialsOffOrigin();
    });

    it("on a copy's destination: a blob HEAD redirected to another origin that asks for credentials", async () => {
        await pushImage(registry.endpoint("dev/dst-side"), "1.0.0", "dst-side");
        server.handler = (req, res) => {
            if (root(req, res)) return;
            if (req.url?.includes("/blobs/")) {
                res.writeHead(307, { Location: `${cdn.url}/blob` }).end();
                return;
            }
            res.writeHead(404, { ...V2, "Content-Type": "application/json" }).end(
                '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}',
            );
        };
        const copy = copyImage(
            registry.endpoint("dev/dst-side"),
            "1.0.0",
            endpoint({ credentials: CREDENTIALS }),
            "1.0.0",
        );
        await expect(copy).rejects.toMatchObject(refused());
        expectNoCredentialsOffOrigin();
    });
});

describe("a plain-HTTP token realm on another origin", () => {
    let proxy: CountingProxy;
    const saved = process.env.HTTP_PROXY;
    beforeAll(async () => {
        proxy = await startCountingProxy();
    });
    afterAll(async () => {
        if (saved === undefined) delete process.env.HTTP_PROXY;
        else process.env.HTTP_PROXY = saved;
        await proxy?.stop();
    });

    it("never gets an http registry's credentials, in cleartext to another host", async () => {
        // The proxy carries tokens.example to the realm on 127.0.0.1: a host off this machine.
        process.env.HTTP_PROXY = proxy.url;
        server.handler = (_req, res) =>
            res
                .writeHead(401, {
                    ...V2,
                    "WWW-Authenticate": `Bearer realm="http://tokens.example:${realm.port}/token"`,
                })
                .end();
        await expect(
            headManifest(endpoint({ credentials: CREDENTIALS }), "1.0.0"),
        ).rejects.toMatchObject({
            kind: "auth",
            message: expect.stringContaining(
                "names a plain-HTTP token service (http://tokens.example:",
            ),
        });
        expect(proxy.carried).toEqual([]);
        expect(realm.requests).toEqual([]);
    });
});

describe("what reaches an error message", () => {
    it("escapes control characters a server sent, and bounds their length", async () => {
        const message = `\u001b[2J\u001b[31mforged\r\nerror: all good\u0007${"x".repeat(5000)}`;
        server.handler = (req, res) => {
            if (root(req, res)) return;
            res.writeHead(400, { ...V2, "Content-Type": "application/json" }).end(
                JSON.stringify({ errors: [{ code: "DENIED", message }] }),
            );
        };
        const error = (await getManifest(endpoint(), "1.0.0").catch((e: Error) => e)) as Error;
        expect(error.message).toContain("(DENIED: \\u001b[2J\\u001b[31mforged\\u000d\\u000aerror");
        expect(error.message).not.toMatch(/[\u0000-\u001f\u007f]/);
        expect(error.message.length).toBeLessThan(600);
    });

    it("never echoes a password in apiUrl", async () => {
        const apiUrl = "http://publisher:s3cret@127.0.0.1:5000";
        await expect(headManifest(endpoint({ apiUrl }), "1.0.0")).rejects.toMatchObject({
            kind: "invalid",
            message: expect.stringContaining(
                "apiUrl http://***@127.0.0.1:5000 must not carry credentials",
            ),
        });
        expect(checkSameRegistry(apiUrl, "127.0.0.1:5000/ml/x")).toContain(
            "apiUrl http://***@127.0.0.1:5000 must not carry credentials",
        );
        for (const broken of ["http://publisher:s3cret@[::1", "publisher:s3cret@host"]) {
            expect(checkSameRegistry(broken, "127.0.0.1:5000/ml/x")).not.toContain("s3cret");
        }
        // Nor a token in its query or fragment.
        const query = checkSameRegistry("http://127.0.0.1:5000/x?token=s3cret#k=s3cret", "h/x");
        expect(query).toContain("?token=***#k=***");
    });

    it("refuses a proxy scheme it does not speak, and never echoes a proxy's password", () => {
        const url = new URL("https://registry.example/v2/");
        expect(() => proxyFor(url, { HTTPS_PROXY: "socks5h://user:s3cret@proxy:1080" })).toThrow(
            "the proxy socks5h://***@proxy:1080 (from the environment) is a socks5h:// proxy, which this client does not speak",
        );
        expect(() => proxyFor(url, { HTTPS_PROXY: "socks5://proxy:1080" })).toThrow(
            "is a socks5:// proxy",
        );
        // Without a scheme, as Go reads it: http://, and an unusable one is refused unechoed.
        expect(proxyFor(url, { HTTPS_PROXY: "user:s3cret@proxy:3128" })?.href).toBe(
            "http://user:s3cret@proxy:3128/",
        );
        expect(() => proxyFor(url, { HTTPS_PROXY: "user:s3cret@proxy:99999" })).toThrow(
            'the proxy "***@proxy:99999" (from the environment) is not an http:// or https:// URL',
        );
    });
});

describe("an apiUrl with a path", () => {
    it("is refused for a target: docker pushes to <server>/v2/, so the guard must check there", () => {
        expect(checkSameRegistry("https://registry.example/mirror", "registry.example/ml/x")).toBe(
            "apiUrl https://registry.example/mirror has a path, query or fragment, but docker pushes to " +
                "https://registry.example/v2/, so the guard must look there: use apiUrl https://registry.example",
        );
        expect(
            checkSameRegistry("https://registry.example/", "registry.example/ml/x"),
        ).toBeUndefined();
    });
});

describe("checkSameRegistry, on values another stack's outputs may set", () => {
    it("never puts a control character of a repository URI into its message", () => {
        const uri = "127.0.0.1:5000/x\x1b]0;pwned\x07\x1b[2K\rFAKE: approved\n";
        const message = checkSameRegistry("https://public.ecr.aws", uri) ?? "";
        expect(message).toContain("repositoryUri 127.0.0.1:5000/x\\u001b]0;pwned");
        expect(message).not.toMatch(/[\x00-\x1f\x7f]/);
        expect(checkSameRegistry("https://public.ecr.aws", "\x1b[31mhost\n") ?? "").not.toMatch(
            /[\x00-\x1f\x7f]/,
        );
    });
});
