import { createHash } from "crypto";
import { promises as fs } from "fs";
import * as path from "path";
import { hashContext } from "./contextHash";

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
}

/** The exact inputs of one `docker build`, and the hashes that identify its content. */
export interface ModelBuildSpec {
    readonly context: string;
    /** Dockerfile path as Docker resolves it: relative to the working directory. */
    readonly dockerfile: string;
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
    const context = path.posix.normalize(input.context.split(path.sep).join("/"));
    const dockerfile = path.posix.join(context, input.dockerfile ?? "Dockerfile");
    const [contextDigest, dockerfileText] = await Promise.all([
        hashContext(context, dockerfile),
        fs.readFile(dockerfile).catch((e: NodeJS.ErrnoException) => {
            throw new Error(
                e.code === "ENOENT"
                    ? `Dockerfile ${JSON.stringify(dockerfile)} does not exist`
                    : e.message,
            );
        }),
    ]);

    const problem = missingFingerprintLabel(dockerfileText.toString("utf8"));
    if (problem) throw new Error(`Dockerfile ${JSON.stringify(dockerfile)} ${problem}`);

    const args: Record<string, string> = {
        MODEL_VERSION: input.version,
        MODEL_SHA256: contextDigest.digest,
        SOURCE_URL: input.sourceUrl ?? "",
        REVISION: input.revision ?? "",
        MODEL_PUBLISHER: input.publisher ?? "",
    };
    if (input.baseImage) args.BASE_IMAGE = input.baseImage;

    const fingerprint = createHash("sha256")
        .update(
            JSON.stringify({
                context: contextDigest.digest,
                dockerfile: createHash("sha256").update(dockerfileText).digest("hex"),
                args: Object.keys(args)
                    .sort()
                    .map((k) => [k, args[k]]),
                platform: input.platform,
            }),
        )
        .digest("hex");

    // The fingerprint covers every other input, so it goes in as a build arg last: docker.Image
    // sees its args change exactly when the fingerprint does.
    return {
        context,
        dockerfile,
        platform: input.platform,
        args: { ...args, MODEL_FINGERPRINT: `sha256:${fingerprint}` },
        modelSha256: contextDigest.digest,
        fingerprint: `sha256:${fingerprint}`,
    };
}

/**
 * The guard recognises its own publications (a retried push, a rollback) by the fingerprint label,
 * so the Dockerfile must set it in its final stage. Returns what is missing, or undefined.
 */
export function missingFingerprintLabel(dockerfileText: string): string | undefined {
    const lines = dockerfileText.split(/\r?\n/);
    let lastFrom = -1;
    lines.forEach((line, i) => {
        if (/^\s*FROM\s/i.test(line)) lastFrom = i;
    });
    const finalStage = lines.slice(lastFrom + 1).join("\n");
    const hasArg = /^\s*ARG\s+MODEL_FINGERPRINT\b/im.test(finalStage);
    const hasLabel = /model-registry\.fingerprint\s*=\s*"?\$\{?MODEL_FINGERPRINT\}?"?/.test(
        finalStage,
    );
    if (hasArg && hasLabel) return undefined;
    return (
        "does not label the image with its content fingerprint, which the immutability guard " +
        "needs to recognise a version it already published. Add these lines after its last FROM: " +
        'ARG MODEL_FINGERPRINT and LABEL model-registry.fingerprint="${MODEL_FINGERPRINT}" ' +
        'model-registry.publisher="${MODEL_PUBLISHER}" (with ARG MODEL_PUBLISHER).'
    );
}
