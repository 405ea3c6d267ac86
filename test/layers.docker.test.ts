/**
 * A model larger than the layer cap, for real: the example context with weight shards, the cap
 * lowered to 4 MiB, built by a Docker engine with the program's build inputs, pushed to a real
 * registry, and served. Never skipped: without Docker these tests fail with the install hint.
 */
import { createHash, randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ModelBuildSpec, modelBuildSpec } from "../lib/publication/buildSpec";
import { baseImage, buildWithSpec, docker, ensureDockerEngine } from "./support/docker";
import { LocalRegistry, fetchManifest, startRegistry, storedBlobs } from "./support/registry";

jest.setTimeout(10 * 60_000);

const MiB = 1024 * 1024;
const CAP = 4 * MiB;
const SHARDS = ["weights/shard-1.bin", "weights/shard-2.bin", "weights/shard-3.bin"];

let registry: LocalRegistry;
let work: string;
let context: string;
let base: string;
const ref = () => `${registry.host}/ml/big`;

beforeAll(async () => {
    await ensureDockerEngine();
    base = baseImage();
    registry = await startRegistry();
    work = fs.mkdtempSync(path.join(os.tmpdir(), "layers-"));
    context = path.join(work, "model");
    fs.cpSync("model", context, { recursive: true });
    const model = JSON.parse(fs.readFileSync(path.join(context, "model.json"), "utf8"));
    fs.writeFileSync(
        path.join(context, "model.json"),
        JSON.stringify({ ...model, shards: SHARDS }),
    );
    fs.mkdirSync(path.join(context, "weights"));
    for (const s of SHARDS) fs.writeFileSync(path.join(context, s), randomBytes(3 * MiB));
});
afterAll(async () => {
    for (const tag of ["1.0.0", "1.1.0"]) {
        if (registry) await docker(["rmi", "-f", `${ref()}:${tag}`]).catch(() => undefined);
    }
    await registry?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
});

const specFor = (version: string) =>
    modelBuildSpec({
        context,
        version,
        platform: "linux/amd64",
        baseImage: base,
        maxLayerBytes: CAP,
        layersDir: path.join(work, "gen"),
    });

/** Builds and pushes; the blobs the registry received, and the manifest digest. */
async function publish(spec: ModelBuildSpec, version: string) {
    const before = storedBlobs(registry);
    await buildWithSpec(spec, `${ref()}:${version}`, work);
    const push = await docker(["push", `${ref()}:${version}`]);
    const after = storedBlobs(registry);
    const added = [...after.keys()].filter((d) => !before.has(d));
    return {
        added,
        addedBytes: added.reduce((n, d) => n + (after.get(d) ?? 0), 0),
        manifestDigest: (push.stdout.match(/digest: (sha256:[0-9a-f]{64})/) ?? [])[1],
    };
}

const sha = (file: string) =>
    `sha256:${createHash("sha256").update(fs.readFileSync(file)).digest("hex")}`;

describe("a model over the layer cap", () => {
    let v1: ModelBuildSpec;

    it("is published with every layer under the cap, and the server loads it from all of them", async () => {
        v1 = await specFor("1.0.0");
        expect(v1.layers.length).toBeGreaterThanOrEqual(SHARDS.length);
        await publish(v1, "1.0.0");
        const { layers } = await fetchManifest(registry.endpoint("ml/big"), "1.0.0");
        const model = layers.slice(-v1.layers.length);
        for (const l of model) expect(l.size).toBeLessThanOrEqual(CAP);
        expect(model.reduce((n, l) => n + l.size, 0)).toBeGreaterThan(CAP);

        const container = (
            await docker(["run", "-d", "--rm", "-p", "127.0.0.1::8080", `${ref()}:1.0.0`])
        ).stdout.trim();
        try {
            const port = (await docker(["port", container, "8080/tcp"])).stdout.split(":").pop();
            const health = await waitForHealth(`http://127.0.0.1:${port!.trim()}/health`);
            expect(health.model_file_sha256).toBe(sha(path.join(context, "model.json")));
            expect(health.shards).toEqual(
                Object.fromEntries(SHARDS.map((s) => [s, sha(path.join(context, s))])),
            );
            expect(health.model_sha256).toBe(v1.modelSha256);
        } finally {
            await docker(["rm", "-f", container]).catch(() => undefined);
        }
    });

    it("pushes nothing when run again unchanged", async () => {
        const again = await specFor("1.0.0");
        expect(again).toEqual(v1);
        const { added } = await publish(again, "1.0.0");
        expect(added).toEqual([]);
    });

    it("pushes only the changed shard's layer (and the config and manifest) when one shard changes", async () => {
        const changed = SHARDS[1];
        fs.writeFileSync(path.join(context, changed), randomBytes(3 * MiB));
        const v2 = await specFor("1.1.0");
        const layer = v2.layers.findIndex((l) => l.files.includes(changed));
        expect(v2.layers.map((l) => l.files)).toEqual(v1.layers.map((l) => l.files));

        const { added, addedBytes, manifestDigest } = await publish(v2, "1.1.0");
        const m1 = await fetchManifest(registry.endpoint("ml/big"), "1.0.0");
        const m2 = await fetchManifest(registry.endpoint("ml/big"), "1.1.0");
        const first = m2.layers.length - v2.layers.length;
        const changedLayer = m2.layers[first + layer];
        expect(new Set(added)).toEqual(
            new Set([changedLayer.digest, m2.config.digest, manifestDigest]),
        );
        expect(m2.layers.filter((l, i) => l.digest !== m1.layers[i].digest)).toEqual([
            changedLayer,
        ]);
        expect(addedBytes).toBeLessThan(changedLayer.size + 16 * 1024);
    });
});

describe("a model file over the cap", () => {
    it("is refused before anything is built, naming the file, its size, the cap and the fix", async () => {
        const huge = path.join(context, "weights", "huge.bin");
        // The Dockerfile a build would use is the one of the last good run: nothing new was laid out.
        const last = await specFor("1.1.0");
        fs.writeFileSync(huge, Buffer.alloc(CAP + 1));
        try {
            await expect(specFor("2.0.0")).rejects.toThrow(
                /model file "weights\/huge\.bin" is 4\.0 MiB \(4194305 bytes\).*at most 4\.0 MiB \(4194304 bytes\).*smaller shards \(for example a smaller max_shard_size\).*Nothing was built or pushed/,
            );
            expect(fs.readFileSync(last.dockerfile, "utf8")).not.toContain("huge.bin");
        } finally {
            fs.rmSync(huge);
        }
    });
});

async function waitForHealth(url: string): Promise<any> {
    const deadline = Date.now() + 30_000;
    for (;;) {
        try {
            const res = await fetch(url);
            return await res.json();
        } catch (e) {
            if (Date.now() > deadline) throw e;
            await new Promise((r) => setTimeout(r, 200));
        }
    }
}
