/**
 * `copyImage` refuses a source manifest that names child manifests but is not an index (its
 * `manifests` is not a list, or it also has a config): copied as an image, it would leave the
 * children behind. A scripted source serves the manifest; the destination is a real registry.
 */
import { headManifest } from "../lib/oci/client";
import { copyImage } from "../lib/oci/copy";
import { sha256, startScriptedServer } from "./support/misbehavingServers";
import { LocalRegistry, startRegistry } from "./support/registry";

let plain: LocalRegistry;
beforeAll(async () => {
    plain = await startRegistry();
});
afterAll(async () => {
    await plain?.stop();
});

describe("a source manifest that is neither an image nor an index", () => {
    it.each([
        ["a config and a list of children", { config: null, manifests: [] as unknown[] }],
        ["children that are not a list", { manifests: { digest: sha256("x"), size: 1 } }],
    ])("refuses a manifest with %s, and writes no tag", async (_label, fields) => {
        const body = Buffer.from(
            JSON.stringify({
                schemaVersion: 2,
                mediaType: "application/vnd.oci.image.manifest.v1+json",
                layers: [],
                ...fields,
            }),
        );
        const source = await startScriptedServer();
        source.handler = (req, res) => {
            const headers = {
                "Docker-Distribution-API-Version": "registry/2.0",
                "Content-Type": "application/vnd.oci.image.manifest.v1+json",
                "Docker-Content-Digest": sha256(body),
            };
            if (req.url === "/v2/") res.writeHead(200, headers).end("{}");
            else if (/^\/v2\/src\/manifests\//.test(req.url ?? ""))
                res.writeHead(200, headers).end(req.method === "HEAD" ? undefined : body);
            else res.writeHead(404).end();
        };
        try {
            const from = { apiUrl: source.url, repository: "src", retries: 0 };
            await expect(
                copyImage(from, "v1", plain.endpoint("prod/malformed"), "v1"),
            ).rejects.toMatchObject({
                kind: "protocol",
                message: expect.stringContaining("names child manifests but is not an index"),
            });
            expect(await headManifest(plain.endpoint("prod/malformed"), "v1")).toEqual({
                exists: false,
            });
        } finally {
            await source.stop();
        }
    });
});
