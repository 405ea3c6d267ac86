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
        hashContext(context),
        fs.readFile(dockerfile).catch((e: NodeJS.ErrnoException) => {
            throw new Error(
                e.code === "ENOENT"
                    ? `Dockerfile ${JSON.stringify(dockerfile)} does not exist`
                    : e.message,
            );
        }),
    ]);

    const args: Record<string, string> = {
        MODEL_VERSION: input.version,
        MODEL_SHA256: contextDigest.digest,
        SOURCE_URL: input.sourceUrl ?? "",
        REVISION: input.revision ?? "",
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

    return {
        context,
        dockerfile,
        platform: input.platform,
        args,
        modelSha256: contextDigest.digest,
        fingerprint: `sha256:${fingerprint}`,
    };
}
