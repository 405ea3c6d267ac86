/**
 * The model image for real: built by a Docker engine (BuildKit) from the example context with the
 * exact build inputs the program gives docker.Image, run, inspected, and pushed to a real registry.
 * Never skipped: without Docker these tests fail with the command that installs it.
 */
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { modelBuildSpec } from "../lib/publication/buildSpec";
import { baseImage, buildWithSpec, docker, ensureDockerEngine } from "./support/docker";
import { LocalRegistry, fetchManifest, startRegistry, storedBlobs } from "./support/registry";

jest.setTimeout(10 * 60_000);

const PLATFORM = "linux/amd64";
let base: string;

beforeAll(async () => {
    await ensureDockerEngine();
    base = baseImage();
});

/** HTTP against the running container, retried until the server is up. */
async function call(
    url: string,
    init?: { method?: string; body?: string },
): Promise<{ status: number; json: any }> {
    const deadline = Date.now() + 30_000;
    for (;;) {
        try {
            const res = await fetch(url, {
                method: init?.method ?? "GET",
                body: init?.body,
                headers: { "Content-Type": "application/json" },
            });
            return { status: res.status, json: await res.json() };
        } catch (e) {
            if (Date.now() > deadline) throw e;
            await new Promise((r) => setTimeout(r, 200));
        }
    }
}

describe("the example model image", () => {
    const tag = `model-registry-test/iris:1.0.0-${process.pid}`;
    let container = "";
    let url = "";
    let spec: Awaited<ReturnType<typeof modelBuildSpec>>;
    let imageId = "";

    const input = () => ({
        context: "model",
        version: "1.0.0",
        platform: PLATFORM,
        baseImage: base,
        sourceUrl: "https://example.com/ml/iris",
        revision: "0123abc",
        publisher: "model-registry/dev",
    });

    beforeAll(async () => {
        spec = await modelBuildSpec(input());
        imageId = (await buildWithSpec(spec, tag)).imageId;
        container = (
            await docker(["run", "-d", "--rm", "-p", "127.0.0.1::8080", tag])
        ).stdout.trim();
        const port = (await docker(["port", container, "8080/tcp"])).stdout.trim().split(":").pop();
        url = `http://127.0.0.1:${port}`;
    });
    afterAll(async () => {
        if (container) await docker(["rm", "-f", container]).catch(() => undefined);
        await docker(["rmi", "-f", tag]).catch(() => undefined);
    });

    it("carries the version, the model checksum, the source and the guard's fingerprint in its labels", async () => {
        const labels = JSON.parse(
            (await docker(["image", "inspect", "--format", "{{json .Config.Labels}}", tag])).stdout,
        );
        expect(labels).toEqual({
            "org.opencontainers.image.title": "model",
            "org.opencontainers.image.version": "1.0.0",
            "org.opencontainers.image.source": "https://example.com/ml/iris",
            "org.opencontainers.image.revision": "0123abc",
            "model-registry.model.sha256": spec.modelSha256,
            "model-registry.publisher": "model-registry/dev",
            "model-registry.fingerprint": spec.fingerprint,
        });
        expect(labels).not.toHaveProperty("org.opencontainers.image.created");
    });

    it("runs as an unprivileged user, with a health check", async () => {
        const config = JSON.parse(
            (await docker(["image", "inspect", "--format", "{{json .Config}}", tag])).stdout,
        );
        expect(config.User).toBe("10001:10001");
        expect(config.Healthcheck.Test).toEqual([
            "CMD",
            "python3",
            "/opt/model/server.py",
            "--healthcheck",
        ]);
        await call(`${url}/health`);
        const uid = (
            await docker(["exec", container, "python3", "-c", "import os; print(os.getuid())"])
        ).stdout.trim();
        expect(uid).toBe("10001");
        // The HEALTHCHECK command itself, run in the container: exit 0 while the server answers.
        await expect(
            docker(["exec", container, "python3", "/opt/model/server.py", "--healthcheck"]),
        ).resolves.toBeDefined();
    });

    it("answers /health from the baked-in model", async () => {
        const { status, json } = await call(`${url}/health`);
        expect(status).toBe(200);
        const modelBytes = fs.readFileSync("model/model.json");
        expect(json).toEqual({
            status: "ok",
            version: "1.0.0",
            model: "iris-softmax",
            // The same names and values as the labels and the stack outputs.
            model_sha256: spec.modelSha256,
            fingerprint: spec.fingerprint,
            model_file_sha256: `sha256:${createHash("sha256").update(modelBytes).digest("hex")}`,
        });
    });

    it("answers /predict, and refuses malformed input", async () => {
        const ok = await call(`${url}/predict`, {
            method: "POST",
            body: JSON.stringify({
                inputs: [
                    [5.1, 3.5, 1.4, 0.2],
                    [6.7, 3.0, 5.2, 2.3],
                ],
            }),
        });
        expect(ok.status).toBe(200);
        expect(ok.json.version).toBe("1.0.0");
        expect(ok.json.predictions.map((p: any) => p.label)).toEqual(["setosa", "virginica"]);
        const probs = Object.values(ok.json.predictions[0].probabilities) as number[];
        expect(probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 10);
        const bad = await call(`${url}/predict`, {
            method: "POST",
            body: JSON.stringify({ inputs: [[1, 2]] }),
        });
        expect(bad.status).toBe(400);
        expect(bad.json.error).toMatch(/row 0: expected 4 finite numbers/);
    });

    it("rebuilds an unchanged context entirely from cache, to the same image", async () => {
        const again = await buildWithSpec(await modelBuildSpec(input()), tag);
        expect(again.imageId).toBe(imageId);
        expect(again.log).toMatch(
            /#(\d+) \[model-layer-1 1\/1\] COPY \[model\.json,\/opt\/model\/\]\n(#\1 .*\n)*#\1 CACHED/,
        );
        expect(again.log).toMatch(
            /#(\d+) \[\S+ \S+\] COPY --from=model-layer-1 \S+\n(#\1 .*\n)*#\1 CACHED/,
        );
    });
});

describe("a version bump with only the model changed", () => {
    let registry: LocalRegistry;
    let work: string;

    beforeAll(async () => {
        registry = await startRegistry();
        work = fs.mkdtempSync(path.join(os.tmpdir(), "bump-"));
        fs.cpSync("model", path.join(work, "model"), { recursive: true });
    });
    afterAll(async () => {
        // The engine keeps tagged images: remove both versions so runs do not pile them up.
        if (registry) {
            for (const tag of ["1.0.0", "1.1.0"]) {
                await docker(["rmi", "-f", `${registry.host}/ml/iris:${tag}`]).catch(
                    () => undefined,
                );
            }
        }
        await registry?.stop();
        if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    const manifest = (tag: string) => fetchManifest(registry.endpoint("ml/iris"), tag);

    it("pushes only the model layer, the image config and the manifest", async () => {
        const ref = `${registry.host}/ml/iris`;
        const context = path.join(work, "model");
        const v1 = await modelBuildSpec({
            context,
            version: "1.0.0",
            platform: PLATFORM,
            baseImage: base,
            layersDir: path.join(work, "gen"),
        });
        await buildWithSpec(v1, `${ref}:1.0.0`, work);
        await docker(["push", `${ref}:1.0.0`]);
        const before = storedBlobs(registry);

        const model = JSON.parse(fs.readFileSync(path.join(context, "model.json"), "utf8"));
        model.bias = [0.3, 1.0, -1.3];
        fs.writeFileSync(path.join(context, "model.json"), JSON.stringify(model, null, 2));
        const v2 = await modelBuildSpec({
            context,
            version: "1.1.0",
            platform: PLATFORM,
            baseImage: base,
            layersDir: path.join(work, "gen"),
        });
        expect(v2.modelSha256).not.toBe(v1.modelSha256);
        await buildWithSpec(v2, `${ref}:1.1.0`, work);
        const push = await docker(["push", `${ref}:1.1.0`]);

        const after = storedBlobs(registry);
        const added = [...after.keys()].filter((d) => !before.has(d));
        const m1 = await manifest("1.0.0");
        const m2 = await manifest("1.1.0");
        const manifestDigest = (push.stdout.match(/digest: (sha256:[0-9a-f]{64})/) ?? [])[1];
        const modelLayer = m2.layers[m2.layers.length - 1];

        // Everything below the model layer is shared with 1.0.0 and was not sent again.
        expect(m2.layers.slice(0, -1)).toEqual(m1.layers.slice(0, -1));
        expect(new Set(added)).toEqual(
            new Set([modelLayer.digest, m2.config.digest, manifestDigest]),
        );
        const addedBytes = added.reduce((n, d) => n + (after.get(d) ?? 0), 0);
        const baseBytes = m2.layers.slice(0, -1).reduce((n, l) => n + l.size, 0);
        expect(addedBytes).toBeLessThan(modelLayer.size + 16 * 1024);
        expect(baseBytes).toBeGreaterThan(10 * addedBytes);
        // The old version is untouched.
        expect((await manifest("1.0.0")).layers).toEqual(m1.layers);
    });
});
