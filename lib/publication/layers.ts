/**
 * Lays a model's files out in image layers of bounded size.
 *
 * A registry caps the size of one layer (ECR Public 10,000 MiB, private ECR 52,000 MiB), and
 * `docker push` gzips each layer on one core, up to five layers at a time. So one `COPY` of a
 * whole model fails past the cap, and pushes on one core below it. Instead, the Dockerfile marks
 * where the model goes with one comment line in its final stage:
 *
 *     # model-layers: /opt/model/
 *
 * and the program writes the Dockerfile docker.Image builds (lib/publication/buildSpec.ts): the template,
 * with one `FROM scratch AS model-layer-<n>` stage per layer inserted before the final stage
 * (each `COPY`ing that layer's files to their place under the destination), and the marker line
 * replaced by one `COPY --from=model-layer-<n> <dest> <dest>` per layer. Each of those is one
 * layer of the image.
 *
 * Why stages, not one `COPY` per layer in the final stage: a layer's tar holds its directories
 * with their modification times. A `COPY` that adds files to a directory stamps it with the build
 * time, and a changed layer makes every later step run again, so every later layer would change
 * too. A stage's result is cached by its own files alone, and `COPY --from` gives the destination
 * directories the stage's times: a changed file changes only its own layer.
 *
 * Which files: every file of the build context (after .dockerignore, exactly as docker.Image
 * hashes it and BuildKit receives it, see `listContext`) except the template itself, the ignore
 * files, and what the Dockerfile's other `COPY`/`ADD` instructions name (server.py in the
 * example). Those must name files or directories literally, so the split is unambiguous.
 *
 * How they are packed (`planLayers`), from the files alone, so the same files give the same
 * layers in the same order on any machine:
 * - whole files, in the context's walk order (byte order of paths), next-fit: a layer takes the
 *   next file while its size stays within the target size, else a new layer starts;
 * - target size: the total over PARALLEL_LAYERS, rounded up to a power of two (a small change of
 *   the total does not move it), at least MIN_LAYER_BYTES, at most the cap; PARALLEL_LAYERS does
 *   not follow the publishing machine's cores, which would give another image on another machine;
 *   8 keeps docker push's five concurrent uploads busy on any machine;
 * - every layer's compressed size bounded (`blobBound`) under the cap; a file that alone cannot
 *   fit is refused before anything is built, and so is a model that needs more than
 *   MAX_MODEL_LAYERS layers.
 * A shard as large as the target gets a layer of its own, so re-exporting one shard pushes that
 * shard's layer only. (Changing a small file's size can move the boundaries after it.)
 */
import * as path from "path";

const MiB = 1024 * 1024;

/** The largest layer each kind of target takes (ECR service quotas, "maximum layer size"). */
export const LAYER_CAPS = {
    "ecr-public": 10_000 * MiB,
    "ecr-private": 52_000 * MiB,
    // A registry on this machine has no cap, but an image published there may be promoted to
    // ECR Public, so the same layers must fit there.
    local: 10_000 * MiB,
} as const;

/** How many layers a model is spread over when its files allow it. */
export const PARALLEL_LAYERS = 8;

/** No layer is made smaller than this on purpose (each costs requests and a stage). */
export const MIN_LAYER_BYTES = 8 * MiB;

/**
 * Most model layers per image. The Docker engine stacks at most 128 layers (overlay2's lower
 * directories), and the base image and the Dockerfile's own steps need some of them.
 */
export const MAX_MODEL_LAYERS = 100;

/** The marker line: `# model-layers: <destination directory>`. */
const MARKER = /^\s*#\s*model-layers:\s*(.*?)\s*$/;

/** A file to lay out: path relative to the context (slash-separated), size in bytes. */
export interface LayerFile {
    readonly path: string;
    readonly size: number;
}

/** One image layer of the model. */
export interface ModelLayer {
    /** Its files, in order. */
    readonly files: readonly string[];
    /** Sum of the files' sizes. */
    readonly bytes: number;
}

/** A layout the target cannot take, found before any build. */
export class LayerLayoutError extends Error {}

function human(bytes: number): string {
    return bytes >= 1024 * MiB
        ? `${(bytes / (1024 * MiB)).toFixed(2)} GiB`
        : `${(bytes / MiB).toFixed(1)} MiB`;
}

/**
 * An upper bound of a layer blob's size for these file sizes: the tar (a header of up to three
 * 512-byte blocks per file and per directory, no more of them than files, for long names, content
 * padded to 512, the end blocks) and gzip's worst case on incompressible data (stored blocks:
 * under 0.1% more).
 */
export function blobBound(sizes: readonly number[]): number {
    let tar = 1024 + 3 * 512 * sizes.length;
    for (const size of sizes) tar += 3 * 512 + Math.ceil(size / 512) * 512;
    return tar + Math.ceil(tar / 1000) + 64 * 1024;
}

/** Packs the files into layers; see the module comment. Throws LayerLayoutError. */
export function planLayers(
    files: readonly LayerFile[],
    maxLayerBytes: number,
    parallel = PARALLEL_LAYERS,
): ModelLayer[] {
    for (const f of files) {
        if (blobBound([f.size]) > maxLayerBytes) {
            throw new LayerLayoutError(
                `model file ${JSON.stringify(f.path)} is ${human(f.size)} (${f.size} bytes), and one ` +
                    `file cannot be split across layers: this target takes layers of at most ` +
                    `${human(maxLayerBytes)} (${maxLayerBytes} bytes). Re-export the model in ` +
                    `smaller shards (for example a smaller max_shard_size), each well under that. ` +
                    `Nothing was built or pushed.`,
            );
        }
    }
    const total = files.reduce((n, f) => n + f.size, 0);
    const share = Math.max(1, Math.ceil(total / Math.max(1, parallel)));
    const target = Math.min(
        maxLayerBytes,
        Math.max(MIN_LAYER_BYTES, 2 ** Math.ceil(Math.log2(share))),
    );

    const layers: ModelLayer[] = [];
    let current: LayerFile[] = [];
    const close = () => {
        if (current.length === 0) return;
        layers.push({
            files: current.map((f) => f.path),
            bytes: current.reduce((n, f) => n + f.size, 0),
        });
        current = [];
    };
    for (const f of files) {
        const sizes = [...current, f].map((c) => c.size);
        const raw = sizes.reduce((n, s) => n + s, 0);
        if (current.length > 0 && (raw > target || blobBound(sizes) > maxLayerBytes)) close();
        current.push(f);
    }
    close();

    if (layers.length > MAX_MODEL_LAYERS) {
        throw new LayerLayoutError(
            `the model (${human(total)} in ${files.length} files) needs ${layers.length} layers of ` +
                `at most ${human(maxLayerBytes)}, and an image can hold at most ` +
                `${MAX_MODEL_LAYERS} model layers (the Docker engine stacks at most 128 layers in ` +
                `all). Publish the model in several images, or to a target that takes larger ` +
                `layers. Nothing was built or pushed.`,
        );
    }
    return layers;
}

/** One Dockerfile instruction: its keyword, the rest of it, and the line it starts on. */
interface Instruction {
    readonly keyword: string;
    readonly rest: string;
    readonly line: number;
}

/**
 * Instructions as Docker reads them: comment lines dropped (also inside a continuation), lines
 * ending in `\` joined, the keyword upper-cased.
 */
export function instructions(lines: readonly string[]): Instruction[] {
    const out: Instruction[] = [];
    let pending = "";
    let start = 0;
    lines.forEach((raw, i) => {
        if (/^\s*#/.test(raw)) return;
        if (pending === "") start = i;
        const line = pending + raw;
        if (/\\\s*$/.test(line)) {
            pending = line.replace(/\\\s*$/, " ");
            return;
        }
        pending = "";
        const m = /^\s*([A-Za-z]+)\s*(.*)$/.exec(line);
        if (m) out.push({ keyword: m[1].toUpperCase(), rest: m[2].trim(), line: start });
    });
    const m = /^\s*([A-Za-z]+)\s*(.*)$/.exec(pending);
    if (m) out.push({ keyword: m[1].toUpperCase(), rest: m[2].trim(), line: start });
    return out;
}

/** The marker's line and destination, or undefined when the Dockerfile has none. */
export function findMarker(text: string): { line: number; dest: string } | undefined {
    const lines = text.split(/\r?\n/);
    const found = lines.flatMap((l, i) => {
        const m = MARKER.exec(l);
        return m ? [{ line: i, dest: m[1] }] : [];
    });
    if (found.length === 0) return undefined;
    const where = (problem: string) =>
        new LayerLayoutError(`the Dockerfile's "# model-layers:" line ${problem}`);
    if (found.length > 1) throw where("appears more than once; the model goes in one place");
    const { line, dest } = found[0];
    if (!/^\/[^\s"$\\]*$/.test(dest)) {
        throw where(`needs an absolute destination directory, as in "# model-layers: /opt/model/"`);
    }
    const froms = instructions(lines).filter((i) => i.keyword === "FROM");
    if (froms.length === 0 || froms[froms.length - 1].line > line) {
        throw where("must be in the final stage, after its FROM");
    }
    return { line, dest: dest.endsWith("/") ? dest : `${dest}/` };
}

/**
 * The context paths the Dockerfile's `COPY` and `ADD` instructions name (not `--from` a stage,
 * not URLs), normalised. Throws when one is a pattern or the whole context: then the model's
 * files cannot be told from the rest.
 */
export function namedSources(text: string): string[] {
    const out: string[] = [];
    for (const ins of instructions(text.split(/\r?\n/))) {
        if (ins.keyword !== "COPY" && ins.keyword !== "ADD") continue;
        let rest = ins.rest;
        let fromStage = false;
        for (let m = /^--(\S+)\s*/.exec(rest); m; m = /^--(\S+)\s*/.exec(rest)) {
            if (m[1].startsWith("from=")) fromStage = true;
            rest = rest.slice(m[0].length);
        }
        if (fromStage) continue;
        let words: string[];
        try {
            words = rest.startsWith("[") ? (JSON.parse(rest) as string[]) : rest.split(/\s+/);
        } catch {
            words = rest.split(/\s+/);
        }
        for (const src of words.slice(0, -1)) {
            if (/^[a-z]+:\/\//i.test(src)) continue;
            const norm = path.posix.normalize(src).replace(/^\/+/, "").replace(/\/+$/, "");
            if (norm === "." || norm === "" || /[*?[$\\]/.test(norm)) {
                throw new LayerLayoutError(
                    `with a "# model-layers:" line, the Dockerfile's other COPY and ADD ` +
                        `instructions must name their files or directories one by one, so the ` +
                        `model's files are the rest; "${ins.keyword} ${ins.rest}" names ` +
                        `${JSON.stringify(src)}`,
                );
            }
            out.push(norm);
        }
    }
    return out;
}

/** A file name a generated `COPY` can carry as is: no variables, patterns or control codes. */
export function checkModelFileName(file: string): void {
    if (/[*?[$\\"\u0000-\u001f]/.test(file)) {
        throw new LayerLayoutError(
            `model file ${JSON.stringify(file)} has a character a Dockerfile COPY would read as ` +
                `a pattern or a variable (* ? [ $ \\ " or a control code): rename it`,
        );
    }
}

/** Stage name of layer `n` (1-based). */
export const stageName = (n: number): string => `model-layer-${n}`;

/**
 * The Dockerfile to build: the template with the layer stages inserted before its final stage
 * and the marker replaced by one `COPY --from` per layer. `source` names the template in the
 * generated file's header.
 */
export function renderDockerfile(
    template: string,
    layers: readonly ModelLayer[],
    source: string,
): string {
    const marker = findMarker(template);
    if (!marker) throw new Error("renderDockerfile needs a template with a marker");
    if (/\bmodel-layer-\d+\b/i.test(template)) {
        throw new LayerLayoutError(
            'the Dockerfile uses a stage name "model-layer-<n>", which the program gives the ' +
                "model's layer stages: rename that stage",
        );
    }
    const lines = template.split(/\r?\n/);
    const froms = instructions(lines).filter((i) => i.keyword === "FROM");
    const finalFrom = froms[froms.length - 1].line;
    const { dest } = marker;

    const stages: string[] = [
        `# Generated from ${source} by the program (lib/publication/layers.ts): the model's files in ` +
            `${layers.length} layer(s), one stage each.`,
    ];
    layers.forEach((layer, i) => {
        stages.push(`FROM scratch AS ${stageName(i + 1)}`);
        const byDir = new Map<string, string[]>();
        for (const f of layer.files) {
            const dir = path.posix.dirname(f);
            byDir.set(dir, [...(byDir.get(dir) ?? []), f]);
        }
        for (const [dir, files] of byDir) {
            const to = dir === "." ? dest : `${dest}${dir}/`;
            stages.push(`COPY ${JSON.stringify([...files, to])}`);
        }
    });
    stages.push("");
    const copies = layers.map(
        (_l, i) => `COPY --from=${stageName(i + 1)} ${JSON.stringify([dest, dest])}`,
    );
    const out = [
        ...lines.slice(0, finalFrom),
        ...stages,
        ...lines.slice(finalFrom, marker.line),
        `# The model: ${layers.length} layer(s) into ${dest}, generated from the model-layers line.`,
        ...copies,
        ...lines.slice(marker.line + 1),
    ];
    return out.join("\n");
}
