import { createHash } from "crypto";
import * as http from "http";
import { authorizedRequest, headManifest, parseChallenge } from "../lib/registryClient";
import { LocalRegistry, pushImage, startRegistry } from "./support/registry";

jest.setTimeout(60_000);

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

    it("returns nothing for schemes it does not speak", () => {
        expect(parseChallenge("Negotiate abc")).toBeUndefined();
        expect(parseChallenge("")).toBeUndefined();
    });
});

describe("headManifest against a real registry", () => {
    let registry: LocalRegistry;
    beforeAll(async () => {
        registry = await startRegistry();
    });
    afterAll(async () => {
        await registry?.stop();
    });

    it("reports the digest of exactly the manifest bytes the registry serves", async () => {
        const endpoint = registry.endpoint("ml/client");
        const pushed = await pushImage(endpoint, "1.0.0", "client");
        const lookup = await headManifest(endpoint, "1.0.0");
        expect(lookup).toEqual({
            exists: true,
            digest: pushed,
            mediaType: "application/vnd.oci.image.manifest.v1+json",
        });
        const body = await authorizedRequest(
            endpoint,
            "GET",
            "/v2/ml/client/manifests/1.0.0",
            { Accept: "application/vnd.oci.image.manifest.v1+json" },
            "pull",
        );
        expect(`sha256:${createHash("sha256").update(body.body).digest("hex")}`).toBe(pushed);
    });

    it("finds a tag by digest too, and reports absent tags and repositories", async () => {
        const endpoint = registry.endpoint("ml/client2");
        const pushed = await pushImage(endpoint, "2.0.0", "by digest");
        expect(await headManifest(endpoint, pushed)).toMatchObject({
            exists: true,
            digest: pushed,
        });
        expect(await headManifest(endpoint, "9.9.9")).toEqual({ exists: false });
        expect(await headManifest(registry.endpoint("no/such/repo"), "1.0.0")).toEqual({
            exists: false,
        });
    });
});

/**
 * Protocol behaviours no real registry shows on demand (a 503, a missing digest header), served
 * by a minimal loopback server that answers only what each test needs.
 */
describe("headManifest protocol edges", () => {
    let server: http.Server;
    let url = "";
    let handler: (req: http.IncomingMessage, res: http.ServerResponse) => void = () => undefined;
    beforeAll(async () => {
        server = http.createServer((req, res) => handler(req, res));
        await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
        url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    });
    afterAll(async () => {
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
        expect(calls).toBe(3);
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
            digest: `sha256:${createHash("sha256").update(manifest).digest("hex")}`,
            mediaType: "application/vnd.oci.image.manifest.v1+json",
        });
    });

    it("times out a registry that does not answer", async () => {
        handler = () => undefined; // never answers
        await expect(
            headManifest({ apiUrl: url, repository: "ml/x", retries: 0, timeoutMs: 300 }, "1.0.0"),
        ).rejects.toThrow(/no answer within 300 ms/);
    });
});
