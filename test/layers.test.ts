import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { modelBuildSpec } from "../lib/publication/buildSpec";
import { hashContext } from "../lib/publication/contextHash";
import {
    LAYER_CAPS,
    MAX_MODEL_LAYERS,
    MIN_LAYER_BYTES,
    blobBound,
    findMarker,
    namedSources,
    planLayers,
    renderDockerfile,
} from "../lib/publication/layers";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe("planLayers", () => {
    const shards = (n: number, size: number, prefix = "model-") =>
        Array.from({ length: n }, (_, i) => ({
            path: `${prefix}${String(i + 1).padStart(5, "0")}.safetensors`,
            size,
        }));

    it("spreads a large model over several layers, whole files each, every layer under the cap", () => {
        const files = [{ path: "config.json", size: 2000 }, ...shards(30, 4 * GiB)];
        const layers = planLayers(files, LAYER_CAPS["ecr-public"]);
        expect(layers.length).toBeGreaterThanOrEqual(8);
        expect(layers.flatMap((l) => l.files)).toEqual(files.map((f) => f.path));
        for (const l of layers) {
            const sizes = l.files.map((f) => files.find((x) => x.path === f)!.size);
            expect(blobBound(sizes)).toBeLessThanOrEqual(LAYER_CAPS["ecr-public"]);
        }
    });

    it("gives a shard as large as the target size a layer of its own", () => {
        const layers = planLayers(shards(4, 256 * MiB), LAYER_CAPS.local);
        expect(layers.map((l) => l.files.length)).toEqual([1, 1, 1, 1]);
    });

    it("groups small files, and never makes a layer smaller than needed", () => {
        const layers = planLayers(shards(50, 100 * 1024), LAYER_CAPS.local);
        expect(layers).toHaveLength(1);
        expect(MIN_LAYER_BYTES).toBeGreaterThan(50 * 100 * 1024);
    });

    it("is the same for the same files, whatever the machine", () => {
        const files = shards(13, 700 * MiB);
        expect(planLayers(files, LAYER_CAPS["ecr-private"])).toEqual(
            planLayers([...files], LAYER_CAPS["ecr-private"]),
        );
        // Same sizes, new content: the same layout, so only the changed file's layer changes.
        expect(planLayers(files, LAYER_CAPS.local)).toEqual(planLayers(files, LAYER_CAPS.local));
    });

    it("refuses a file over the cap, naming it, its size, the cap and the fix", () => {
        const files = [...shards(2, 1 * GiB), { path: "big.safetensors", size: 10_000 * MiB }];
        expect(() => planLayers(files, LAYER_CAPS["ecr-public"])).toThrow(
            /model file "big\.safetensors" is 9\.77 GiB \(10485760000 bytes\).*at most 9\.77 GiB \(10485760000 bytes\).*smaller shards.*max_shard_size/,
        );
        // Private ECR takes it.
        expect(planLayers(files, LAYER_CAPS["ecr-private"]).length).toBeGreaterThan(0);
    });

    it("refuses a model that needs more layers than an image holds", () => {
        const files = shards(MAX_MODEL_LAYERS + 1, 3 * MiB);
        expect(() => planLayers(files, 4 * MiB)).toThrow(
            `needs ${MAX_MODEL_LAYERS + 1} layers of at most 4.0 MiB, and an image can hold at most ${MAX_MODEL_LAYERS} model layers`,
        );
        expect(planLayers(shards(MAX_MODEL_LAYERS, 3 * MiB), 4 * MiB)).toHaveLength(
            MAX_MODEL_LAYERS,
        );
    });
});

describe("the generated Dockerfile", () => {
    const template = [
        "ARG BASE=scratch",
        "FROM ${BASE}",
        "COPY server.py /app/server.py",
        'COPY ["conf dir", "/app/conf/"]',
        "# model-layers: /opt/model",
        'LABEL a="b"',
    ].join("\n");

    it("finds the marker in the final stage only", () => {
        expect(findMarker(template)).toEqual({ line: 4, dest: "/opt/model/" });
        expect(() => findMarker("# model-layers: /m/\nFROM scratch\n")).toThrow(
            "must be in the final stage",
        );
        expect(() => findMarker("FROM scratch\n# model-layers: m\n")).toThrow("absolute");
        expect(findMarker("FROM scratch\nCOPY . /\n")).toBeUndefined();
    });

    it("leaves out what the other COPY and ADD instructions name, and refuses patterns", () => {
        expect(namedSources(template)).toEqual(["server.py", "conf dir"]);
        expect(namedSources("FROM a\nCOPY --from=b /x /y\nADD https://e.com/f /f\n")).toEqual([]);
        expect(() => namedSources("FROM a\nCOPY *.py /app/\n")).toThrow(/one by one/);
        expect(() => namedSources("FROM a\nCOPY . /app/\n")).toThrow(/one by one/);
    });

    it("has one stage per layer before the final stage, and one COPY --from per layer in place of the marker", () => {
        const text = renderDockerfile(
            template,
            [
                { files: ["a.bin", "w/b.bin"], bytes: 2 },
                { files: ["w/c.bin"], bytes: 1 },
            ],
            "model/Dockerfile",
        );
        const lines = text.split("\n").filter((l) => !l.startsWith("#"));
        expect(lines).toEqual([
            "ARG BASE=scratch",
            "FROM scratch AS model-layer-1",
            'COPY ["a.bin","/opt/model/"]',
            'COPY ["w/b.bin","/opt/model/w/"]',
            "FROM scratch AS model-layer-2",
            'COPY ["w/c.bin","/opt/model/w/"]',
            "",
            "FROM ${BASE}",
            "COPY server.py /app/server.py",
            'COPY ["conf dir", "/app/conf/"]',
            'COPY --from=model-layer-1 ["/opt/model/","/opt/model/"]',
            'COPY --from=model-layer-2 ["/opt/model/","/opt/model/"]',
            'LABEL a="b"',
        ]);
    });
});

describe("modelBuildSpec with a model-layers line", () => {
    let dir: string;
    beforeEach(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "layers-"));
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    const DOCKERFILE = [
        "FROM scratch",
        "ARG MODEL_PUBLISHER",
        "ARG MODEL_FINGERPRINT",
        'LABEL model-registry.publisher="${MODEL_PUBLISHER}" model-registry.fingerprint="${MODEL_FINGERPRINT}"',
        "COPY server.py /opt/server.py",
        "# model-layers: /opt/model/",
        "",
    ].join("\n");

    function context(files: Record<string, number>): string {
        const ctx = path.join(dir, "model");
        fs.mkdirSync(path.join(ctx, "w"), { recursive: true });
        fs.writeFileSync(path.join(ctx, "Dockerfile"), DOCKERFILE);
        fs.writeFileSync(path.join(ctx, "server.py"), "print('hi')\n");
        fs.writeFileSync(path.join(ctx, ".dockerignore"), "*.md\n");
        fs.writeFileSync(path.join(ctx, "README.md"), "not in the context\n");
        for (const [f, size] of Object.entries(files)) {
            fs.writeFileSync(path.join(ctx, f), Buffer.alloc(size, 1));
        }
        return ctx;
    }
    const spec = (ctx: string, extra: object = {}) =>
        modelBuildSpec({
            context: ctx,
            version: "1.0.0",
            platform: "linux/amd64",
            maxLayerBytes: 4 * MiB,
            layersDir: path.join(dir, "gen"),
            ...extra,
        });

    it("builds a generated Dockerfile whose hash is the context digest docker.Image computes for it", async () => {
        const ctx = context({ "w/a.bin": 3 * MiB, "w/b.bin": 3 * MiB, "model.json": 10 });
        const s = await spec(ctx);
        expect(s.dockerfile).toMatch(new RegExp(`^${dir}/gen/[0-9a-f]{16}/Dockerfile$`));
        expect(s.layers.map((l) => l.files)).toEqual([["model.json", "w/a.bin"], ["w/b.bin"]]);
        // The template, the ignore file, server.py and README.md are not model files.
        const digest = await hashContext(ctx, s.dockerfile);
        expect(s.modelSha256).toBe(digest.digest);
        expect(digest.files).toEqual([
            ".dockerignore",
            "Dockerfile",
            "model.json",
            "server.py",
            "w/a.bin",
            "w/b.bin",
        ]);
        // The same files: the same Dockerfile, path and fingerprint.
        const again = await spec(ctx);
        expect(again).toEqual(s);
    });

    it("uses the template's own ignore file next to the generated Dockerfile, as docker.Image and BuildKit do", async () => {
        const ctx = context({ "a.bin": 10, "b.log": 10 });
        fs.writeFileSync(path.join(ctx, "Dockerfile.dockerignore"), "*.log\n");
        const s = await spec(ctx);
        expect(fs.readFileSync(`${s.dockerfile}.dockerignore`, "utf8")).toBe("*.log\n");
        expect(s.layers.flatMap((l) => l.files)).toEqual(["README.md", "a.bin"]);
        expect(s.modelSha256).toBe((await hashContext(ctx, s.dockerfile)).digest);
        fs.rmSync(path.join(ctx, "Dockerfile.dockerignore"));
        const t = await spec(ctx);
        expect(fs.existsSync(`${t.dockerfile}.dockerignore`)).toBe(false);
        expect(t.layers.flatMap((l) => l.files)).toEqual(["a.bin", "b.log"]);
    });

    it("refuses an oversize file before hashing or writing anything", async () => {
        const ctx = context({ "w/a.bin": 3 * MiB, "w/huge.bin": 5 * MiB });
        await expect(spec(ctx)).rejects.toThrow(
            /Dockerfile ".*\/model\/Dockerfile": model file "w\/huge\.bin" is 5\.0 MiB \(5242880 bytes\).*at most 4\.0 MiB \(4194304 bytes\).*max_shard_size.*Nothing was built or pushed/,
        );
        expect(fs.existsSync(path.join(dir, "gen"))).toBe(false);
    });

    it("leaves a Dockerfile without the line as it is", async () => {
        const ctx = context({ "a.bin": 5 * MiB });
        fs.writeFileSync(path.join(ctx, "Dockerfile"), DOCKERFILE.replace(/# model-layers.*/, ""));
        const s = await spec(ctx);
        expect(s.dockerfile).toBe(path.join(ctx, "Dockerfile"));
        expect(s.layers).toEqual([]);
    });
});
