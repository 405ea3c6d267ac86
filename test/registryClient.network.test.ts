/**
 * The registry client reaching a real registry (Debian's docker-registry, distribution 2.8)
 * through what sits between it and the registry: a reverse proxy that serves the registry under
 * a path prefix, one that redirects manifest requests, and a forward/CONNECT proxy from the
 * environment (HTTP_PROXY, HTTPS_PROXY, NO_PROXY). The proxy sends every name to 127.0.0.1, so
 * `registry.invalid`, which no DNS resolves, is reachable only through it.
 */
import { getImageConfig, headManifest } from "../lib/oci/client";
import {
    CountingProxy,
    ScriptedServer,
    startCountingProxy,
    startReverseProxy,
} from "./support/misbehavingServers";
import { LocalRegistry, pushImage, startRegistry } from "./support/registry";

jest.setTimeout(60_000);

const PROXY_VARIABLES = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

let registry: LocalRegistry;
let pushed: string;
beforeAll(async () => {
    registry = await startRegistry();
    pushed = await pushImage(registry.endpoint("ml/net"), "1.0.0", "network");
});
afterAll(async () => {
    await registry?.stop();
});

const found = () => ({
    exists: true,
    digest: pushed,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
});

describe("a registry served under a path prefix", () => {
    let front: ScriptedServer;
    beforeAll(async () => {
        front = await startReverseProxy(registry.apiUrl, { prefix: "/mirror" });
    });
    afterAll(async () => {
        await front?.stop();
    });

    it("keeps apiUrl's path: finds an existing tag and reports an absent one", async () => {
        for (const apiUrl of [`${front.url}/mirror`, `${front.url}/mirror/`]) {
            const endpoint = registry.endpoint("ml/net", { apiUrl });
            expect(await headManifest(endpoint, "1.0.0")).toEqual(found());
            expect(await headManifest(endpoint, "9.9.9")).toEqual({ exists: false });
            expect(await getImageConfig(endpoint, "1.0.0")).toMatchObject({
                manifestDigest: pushed,
                labels: { seed: "network" },
            });
        }
        expect(front.requests.every((r) => r.url.startsWith("/mirror/v2/"))).toBe(true);
    });

    it("refuses a wrong prefix, whose HTML 404 page is not a registry's answer", async () => {
        const endpoint = registry.endpoint("ml/net", { apiUrl: `${front.url}/elsewhere` });
        await expect(headManifest(endpoint, "1.0.0")).rejects.toThrow(
            `HEAD /elsewhere/v2/ml/net/manifests/1.0.0 answered 404 with a web page, not a registry error: ${front.url}/elsewhere does not look like an OCI registry API`,
        );
    });
});

describe("a registry that redirects manifest requests within its origin", () => {
    let front: ScriptedServer;
    beforeAll(async () => {
        front = await startReverseProxy(registry.apiUrl, { redirectManifests: true });
    });
    afterAll(async () => {
        await front?.stop();
    });

    it("follows the redirect for HEAD and GET", async () => {
        const endpoint = registry.endpoint("ml/net", { apiUrl: front.url });
        expect(await headManifest(endpoint, "1.0.0")).toEqual(found());
        expect(await headManifest(endpoint, "9.9.9")).toEqual({ exists: false });
        expect(await getImageConfig(endpoint, "1.0.0")).toMatchObject({ manifestDigest: pushed });
        expect(front.requests.map((r) => `${r.method} ${r.url}`)).toContain(
            "HEAD /moved/v2/ml/net/manifests/1.0.0",
        );
    });
});

describe("proxies from the environment, as Docker reads them", () => {
    let proxy: CountingProxy;
    const saved: Record<string, string | undefined> = {};
    beforeAll(async () => {
        proxy = await startCountingProxy();
    });
    afterAll(async () => {
        await proxy?.stop();
    });
    beforeEach(() => {
        for (const name of PROXY_VARIABLES) {
            saved[name] = process.env[name];
            delete process.env[name];
        }
        proxy.carried.length = 0;
        proxy.proxyAuthorizations.length = 0;
    });
    afterEach(() => {
        for (const name of PROXY_VARIABLES) {
            if (saved[name] === undefined) delete process.env[name];
            else process.env[name] = saved[name];
        }
    });

    const port = () => new URL(registry.apiUrl).port;

    it("sends an http:// lookup through HTTP_PROXY, and straight to the registry for NO_PROXY names", async () => {
        process.env.HTTP_PROXY = proxy.url;
        const endpoint = registry.endpoint("ml/net", {
            apiUrl: `http://registry.invalid:${port()}`,
        });
        expect(await headManifest(endpoint, "1.0.0")).toEqual(found());
        expect(proxy.carried).toEqual([
            `HEAD http://registry.invalid:${port()}/v2/ml/net/manifests/1.0.0`,
        ]);

        proxy.carried.length = 0;
        process.env.NO_PROXY = "other.example, .invalid";
        // Straight to registry.invalid: no DNS knows it, and the proxy sees nothing.
        await expect(headManifest(endpoint, "1.0.0")).rejects.toThrow(
            /cannot be reached \(getaddrinfo ENOTFOUND registry\.invalid/,
        );
        expect(proxy.carried).toEqual([]);
    });

    it("reads the lower-case forms too", async () => {
        process.env.http_proxy = proxy.url;
        const endpoint = registry.endpoint("ml/net", {
            apiUrl: `http://registry.invalid:${port()}`,
        });
        expect(await headManifest(endpoint, "9.9.9")).toEqual({ exists: false });
        expect(proxy.carried).toEqual([
            `HEAD http://registry.invalid:${port()}/v2/ml/net/manifests/9.9.9`,
            `GET http://registry.invalid:${port()}/v2/ml/net/manifests/9.9.9`,
            `GET http://registry.invalid:${port()}/v2/`,
        ]);
    });

    it("never sends a loopback registry through the proxy", async () => {
        process.env.HTTP_PROXY = proxy.url;
        expect(await headManifest(registry.endpoint("ml/net"), "1.0.0")).toEqual(found());
        expect(proxy.carried).toEqual([]);
    });

    it("tunnels an https:// lookup through HTTPS_PROXY with CONNECT, with the proxy credentials of its URL", async () => {
        const tlsFront = await startReverseProxy(registry.apiUrl, {
            tlsNames: ["registry.invalid"],
        });
        try {
            const proxyUrl = new URL(proxy.url);
            proxyUrl.username = "proxy-user";
            proxyUrl.password = "proxy pass";
            process.env.HTTPS_PROXY = proxyUrl.href;
            const endpoint = registry.endpoint("ml/net", {
                apiUrl: `https://registry.invalid:${tlsFront.port}`,
                caCertificate: tlsFront.caCertificate,
            });
            expect(await headManifest(endpoint, "1.0.0")).toEqual(found());
            expect(await getImageConfig(endpoint, "1.0.0")).toMatchObject({
                labels: { seed: "network" },
            });
            // Every connection is a tunnel to the registry's name, with the proxy's credentials.
            expect(proxy.carried.length).toBeGreaterThanOrEqual(2);
            expect(new Set(proxy.carried)).toEqual(
                new Set([`CONNECT registry.invalid:${tlsFront.port}`]),
            );
            expect(new Set(proxy.proxyAuthorizations)).toEqual(
                new Set([`Basic ${Buffer.from("proxy-user:proxy pass").toString("base64")}`]),
            );
            expect(tlsFront.requests.length).toBeGreaterThanOrEqual(3);
            // The certificate is checked inside the tunnel too.
            await expect(
                headManifest({ ...endpoint, caCertificate: undefined }, "1.0.0"),
            ).rejects.toMatchObject({ kind: "tls" });
        } finally {
            await tlsFront.stop();
        }
    });
});
