/**
 * lib/oci/copy.ts when a registry is slow to answer the commit of a blob: against a real registry
 * with loopback fronts for what a registry does not do on demand.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { RegistryEndpoint } from "../lib/oci/client";
import { copyImage } from "../lib/oci/copy";
import { pushFileImage, writeRandomFile } from "./support/copyFixtures";
import { ScriptedServer, forward, startScriptedServer } from "./support/misbehavingServers";
import { LocalRegistry, startRegistry } from "./support/registry";

jest.setTimeout(120_000);

const MiB = 1024 * 1024;
let source: LocalRegistry;
let target: LocalRegistry;
let dir: string;
let image: { digest: string; layerDigest: string; layerSize: number };

beforeAll(async () => {
    [source, target] = await Promise.all([startRegistry(), startRegistry()]);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "review-copy-"));
    const file = path.join(dir, "model.bin");
    writeRandomFile(file, 24 * MiB);
    image = await pushFileImage(source, "dev/model", "1.0.0", file);
});

afterAll(async () => {
    await Promise.all([source?.stop(), target?.stop()]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * A front for `registry` that answers a blob commit (the closing PUT) only `delayMs` after the
 * registry committed it, as a registry does that moves a multi-GB upload into place (distribution
 * on S3 copies the object; ECR assembles the parts). Other answers pass at once. The Host header
 * is kept, so upload locations point back at the front.
 */
async function startSlowCommitFront(
    registry: LocalRegistry,
    delayMs: number,
): Promise<ScriptedServer> {
    const upstream = new URL(registry.apiUrl);
    const front = await startScriptedServer();
    front.handler = (req, res) => {
        const commit =
            req.method === "PUT" && /\/blobs\/uploads\/.*[?&]digest=/.test(req.url ?? "");
        forward(req, res, upstream, {
            keepHost: true,
            answer: (up) => {
                const answer = () => {
                    res.writeHead(up.statusCode ?? 502, up.headers);
                    up.pipe(res);
                };
                if (commit && up.statusCode === 201) setTimeout(answer, delayMs);
                else answer();
            },
        });
    };
    return front;
}

describe("a slow registry commit", () => {
    it("is committed when the registry takes longer than the idle timeout to answer the closing PUT", async () => {
        // timeoutMs stands for the 10 s default; the registry answers the commit 2.5 s after it.
        const front = await startSlowCommitFront(target, 2500);
        try {
            const destination: RegistryEndpoint = {
                apiUrl: front.url,
                repository: "slow/commit",
                timeoutMs: 1000,
            };
            // docker push waits for the commit's answer (Docker's registry transport sets no
            // response-header timeout); the copy must not fail a blob the registry committed.
            await expect(
                copyImage(source.endpoint("dev/model"), "1.0.0", destination, "1.0.0"),
            ).resolves.toMatchObject({
                digest: image.digest,
            });
        } finally {
            await front.stop();
        }
    });
});
