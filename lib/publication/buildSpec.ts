import { createHash } from "crypto";
import { promises as fs } from "fs";
import * as path from "path";
import { hashContext, listContext } from "./contextHash";
import { cleanPath } from "./dockerignore";
import { FINGERPRINT_LABEL } from "./guard";
import {
    LAYER_CAPS,
    LayerLayoutError,
    ModelLayer,
    checkModelFileName,
    findMarker,
    instructions,
    namedSources,
    planLayers,
    renderDockerfile,
} from "./layers";

/** What the user decides about a model image build. */
export interface ModelBuildInput {
    /** Build context directory, relative to the working directory (the Pulumi project). */
    readonly context: string;
    /** Dockerfile path relative to the context. Defaults to `Dockerfile`. */
    readonly dockerfile?: string;
    /** The model version: the image tag and the `org.opencontainers.image.version` label. */
    readonly version: string;
    /** Build platform, e.g. `linux/amd64`. */
    readonly platform: string;
    /** Base image (`BASE_IMAGE` build arg); empty or absent keeps the Dockerfile's default. */
    readonly baseImage?: string;
    /** Source URL label; empty when unknown. */
    readonly sourceUrl?: string;
    /** Source revision label; empty when unknown. */
    readonly revision?: string;
    /**
     * `<project>/<stack>` that publishes the image, for the `model-registry.publisher` label, so a
     * refusal can say truthfully who published a tag. Defaults to empty.
     */
    readonly publisher?: string;
    /**
     * The target registry's largest layer, in bytes (see `LAYER_CAPS` in lib/publication/layers.ts).
     * Defaults to ECR Public's, the smallest, so the image fits anywhere. Only read when the
     * Dockerfile has a `# model-layers:` line.
     */
    readonly maxLayerBytes?: number;
    /**
     * How many layers to spread the model over when its files allow (lib/publication/layers.ts). Defaults
     * to PARALLEL_LAYERS; the benchmark sets 1 for the one-layer comparison.
     */
    readonly parallelLayers?: number;
    /**
     * Where the generated Dockerfile is written, relative to the working directory like
     * `context`. Defaults to `.cache/model-layers`.
     */
    readonly layersDir?: string;
}

/** The exact inputs of one `docker build`, and the hashes that identify its content. */
export interface ModelBuildSpec {
    readonly context: string;
    /**
     * Dockerfile path as Docker resolves it: relative to the working directory. The template
     * itself, or, when it has a `# model-layers:` line, the Dockerfile generated from it.
     */
    readonly dockerfile: string;
    /** The model's layers, in image order; empty without a `# model-layers:` line. */
    readonly layers: readonly ModelLayer[];
    readonly platform: string;
    readonly args: Readonly<Record<string, string>>;
    /** Digest of the build context (the model checksum label), `sha256:<hex>`. */
    readonly modelSha256: string;
    /**
     * Digest of everything that decides the image's content: the context, the Dockerfile (even
     * when it sits outside the context or is ignored), the build args and the platform. Two builds
     * with the same fingerprint produce the same image content; the immutability guard compares it.
     */
    readonly fingerprint: string;
}

/**
 * Computes the build inputs. Deterministic: the same files and input give byte-identical output,
 * with no timestamps, random ids or absolute paths, so an unchanged model never causes a rebuild.
 */
export async function modelBuildSpec(input: ModelBuildInput): Promise<ModelBuildSpec> {
    // One spelling per path ("model/", "./model" and "model" are the same context), so a
    // respelling in config does not change docker.Image's inputs.
    const context = cleanPath(input.context.split(path.sep).join("/"));
    const template = path.posix.join(context, input.dockerfile ?? "Dockerfile");
    const templateText = await fs.readFile(template).catch((e: NodeJS.ErrnoException) => {
        throw new Error(
            e.code === "ENOENT"
                ? `Dockerfile ${JSON.stringify(template)} does not exist`
                : e.message,
        );
    });
    const problem = missingFingerprintLabel(templateText.toString("utf8"));
    if (problem) throw new Error(`Dockerfile ${JSON.stringify(template)} ${problem}`);

    // Everything about the layers is decided, and refused, before any content is hashed.
    const layout = await layOut(template, templateText.toString("utf8"), context, input);
    const dockerfile = layout?.dockerfile ?? template;
    const dockerfileText = layout ? Buffer.from(layout.text) : templateText;
    const contextDigest = await hashContext(context, dockerfile);

    const args: Record<string, string> = {
        MODEL_VERSION: input.version,
        MODEL_SHA256: contextDigest.digest,
        SOURCE_URL: input.sourceUrl ?? "",
        REVISION: input.revision ?? "",
        MODEL_PUBLISHER: input.publisher ?? "",
    };
    if (input.baseImage) args.BASE_IMAGE = input.baseImage;

    // Everything docker.Image compares to decide whether to build and push again: its build
    // inputs exactly as given (the paths too: moving the context is a change to it), the context
    // digest its provider computes (`contextDigest`, which `hashContext` reproduces), and the
    // provider's version, whose Check may compute them differently.
    const fingerprint = createHash("sha256")
        .update(
            JSON.stringify({
                context: contextDigest.digest,
                contextPath: context,
                dockerfilePath: dockerfile,
                dockerfile: createHash("sha256").update(dockerfileText).digest("hex"),
                args: Object.keys(args)
                    .sort()
                    .map((k) => [k, args[k]]),
                platform: input.platform,
                dockerProvider: DOCKER_PROVIDER_VERSION,
            }),
        )
        .digest("hex");

    // The fingerprint covers every other input, so it goes in as a build arg last: docker.Image
    // sees its args change exactly when the fingerprint does.
    return {
        context,
        dockerfile,
        layers: layout?.layers ?? [],
        platform: input.platform,
        args: { ...args, MODEL_FINGERPRINT: `sha256:${fingerprint}` },
        modelSha256: contextDigest.digest,
        fingerprint: `sha256:${fingerprint}`,
    };
}

/**
 * With a `# model-layers:` line in the template: the model's files (lib/publication/layers.ts says which),
 * packed into layers, and the Dockerfile that builds them written under `layersDir`, next to a
 * copy of the template's own `<Dockerfile>.dockerignore` (both docker.Image and BuildKit read
 * the ignore file next to the Dockerfile they are given). Its path depends only on the
 * template's, so it stays the same from run to run. Undefined without the line.
 */
async function layOut(
    template: string,
    text: string,
    context: string,
    input: ModelBuildInput,
): Promise<{ dockerfile: string; text: string; layers: ModelLayer[] } | undefined> {
    try {
        if (!findMarker(text)) return undefined;
        const own = path.posix.relative(context, template);
        const skip = [own, `${own}.dockerignore`, ".dockerignore", ...namedSources(text)];
        const { entries } = await listContext(context, template);
        const files = entries
            .filter((e) => !skip.some((s) => e.path === s || e.path.startsWith(`${s}/`)))
            .map((e) => {
                checkModelFileName(e.path);
                if (!e.stat.isFile()) {
                    throw new LayerLayoutError(
                        `model file ${JSON.stringify(e.path)} is not a regular file (a symlink?): ` +
                            "copy the file itself into the model directory",
                    );
                }
                return { path: e.path, size: e.stat.size };
            });
        const layers = planLayers(
            files,
            input.maxLayerBytes ?? LAYER_CAPS["ecr-public"],
            input.parallelLayers,
        );
        const generated = renderDockerfile(text, layers, template);
        const dir = path.posix.join(
            input.layersDir ?? ".cache/model-layers",
            createHash("sha256").update(template).digest("hex").slice(0, 16),
        );
        const dockerfile = path.posix.join(dir, "Dockerfile");
        await fs.mkdir(dir, { recursive: true });
        await writeIfChanged(dockerfile, generated);
        const ignore = await fs.readFile(`${template}.dockerignore`, "utf8").catch(() => undefined);
        if (ignore === undefined) await fs.rm(`${dockerfile}.dockerignore`, { force: true });
        else await writeIfChanged(`${dockerfile}.dockerignore`, ignore);
        return { dockerfile, text: generated, layers };
    } catch (e) {
        if (e instanceof LayerLayoutError) {
            throw new Error(`Dockerfile ${JSON.stringify(template)}: ${e.message}`);
        }
        throw e;
    }
}

/** Writes through a temporary file and a rename, and only when the content differs. */
async function writeIfChanged(file: string, text: string): Promise<void> {
    const now = await fs.readFile(file, "utf8").catch(() => undefined);
    if (now === text) return;
    const tmp = `${file}.${process.pid}.tmp`;
    await fs.writeFile(tmp, text);
    await fs.rename(tmp, file);
}

/** The @pulumi/docker package (and so docker.Image provider) version the program runs with. */
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const DOCKER_PROVIDER_VERSION: string = require("@pulumi/docker/package.json").version;

/**
 * The guard recognises its own publications (a retried push, a rollback) by the fingerprint label,
 * so the Dockerfile must set it in its final stage. Returns what is missing, or undefined.
 */
export function missingFingerprintLabel(dockerfileText: string): string | undefined {
    const all = instructions(dockerfileText.split(/\r?\n/));
    // The final stage: the instructions after the last FROM.
    const stage = all.slice(all.map((i) => i.keyword).lastIndexOf("FROM") + 1);
    let declared = false;
    let label: string | undefined;
    for (const { keyword, rest } of stage) {
        if (keyword === "ARG" && /^MODEL_FINGERPRINT(=|\s|$)/.test(rest)) declared = true;
        if (keyword === "LABEL") {
            for (const [key, value] of labelPairs(rest)) {
                // Only after the ARG does `${MODEL_FINGERPRINT}` expand to the build arg.
                if (key === FINGERPRINT_LABEL) label = declared ? value : "";
            }
        }
    }
    if (label === "${MODEL_FINGERPRINT}" || label === "$MODEL_FINGERPRINT") return undefined;
    return (
        "does not label the image with its content fingerprint, which the immutability guard " +
        "needs to recognise a version it already published. Add these lines after its last FROM: " +
        'ARG MODEL_FINGERPRINT and LABEL model-registry.fingerprint="${MODEL_FINGERPRINT}" ' +
        'model-registry.publisher="${MODEL_PUBLISHER}" (with ARG MODEL_PUBLISHER), and set the ' +
        "label nowhere else after them."
    );
}

/** The `key=value` pairs of a LABEL instruction, keys and values unquoted. */
function labelPairs(rest: string): [string, string][] {
    const pairs: [string, string][] = [];
    const word =
        /\s*((?:"(?:[^"\\]|\\.)*"|'[^']*'|[^\s="']+)+)=((?:"(?:[^"\\]|\\.)*"|'[^']*'|[^\s"']+)*)/y;
    const unquote = (t: string) =>
        t.replace(/"((?:[^"\\]|\\.)*)"|'([^']*)'/g, (_m, dq: string, sq: string) =>
            dq !== undefined ? dq.replace(/\\(.)/g, "$1") : sq,
        );
    for (let m = word.exec(rest); m; m = word.exec(rest))
        pairs.push([unquote(m[1]), unquote(m[2])]);
    return pairs;
}
