/**
 * The promotion's dynamic provider: copies one version from the source repository into this
 * one, by digest, and keeps (and re-verifies) every version this stack promoted.
 */
import * as pulumi from "@pulumi/pulumi";
import { FINGERPRINT_LABEL } from "../lib/publication/guard";
import { PromotionDecision, decidePromotion } from "../lib/publication/promotion";
import {
    REQUIRED_INPUTS,
    RegistryInputs,
    checkInputs,
    checkResult,
    endpointOf,
    recordKeyOf,
} from "../lib/publication/publishInputs";
import { checkSameRegistry, getImageConfig, headManifest } from "../lib/oci/client";
import { CopyProgress, copyImage } from "../lib/oci/copy";
import {
    ByRepository,
    ProviderResource,
    PublishedVersion,
    RecordedVersions,
    historiesOf,
    recorded,
    recording,
    reverifyHistory,
    reverifyRecord,
    without,
} from "./publicationRecord";
import { HistoryInputs, publishedByKey } from "./tagGuard";

/** The image label with the build context's checksum (see model/Dockerfile). */
const MODEL_SHA256_LABEL = "model-registry.model.sha256";

/** The promotion's inputs as its dynamic provider sees them (plain values). */
export interface ImagePromotionInputs
    // The destination: what the guard and the record get (no fingerprint: nothing is built).
    extends
        Omit<RegistryInputs, "fingerprint">,
        // The source: what the source check gets.
        Omit<PromotionSourceCheckInputs, "passedTags">,
        HistoryInputs {
    /** Set by `check`: what the destination held under the tag ("" when absent). */
    readonly destinationDigest?: string;
    /** The previous form of `promotedHistories`: one repository's, the state's record key. */
    readonly promotedHistory?: Readonly<Record<string, string>>;
    /**
     * Set by `check`, carried from run to run and never dropped: every tag this stack promoted,
     * with its digest, by record key (see `recordKeyOf`).
     */
    readonly promotedHistories?: ByRepository<string>;
}

/** A promoted version as the outputs keep it. */
type Promoted = PublishedVersion & { readonly source: string };

/** `digest` is the same in the source and here. */
export interface ImagePromotionOutputs extends RecordedVersions<Promoted> {
    readonly sourceRepositoryUri: string;
    /** The source image's build context checksum label. */
    readonly modelSha256: string;
    readonly warnings?: readonly string[];
}

/** The source's inputs that must be known: the source check's (with the tag) and the promotion's. */
export const SOURCE_INPUTS = [
    "sourceName",
    "sourceRepositoryUri",
    "sourceApiUrl",
    "sourceRepositoryPath",
] as const;

const PROMOTION_INPUTS = [...REQUIRED_INPUTS.filter((k) => k !== "fingerprint"), ...SOURCE_INPUTS];

/** The source's registry, named as the destination's inputs name it. */
export function sourceRegistry(i: PromotionSourceCheckInputs) {
    return {
        repositoryUri: i.sourceRepositoryUri,
        apiUrl: i.sourceApiUrl,
        repositoryPath: i.sourceRepositoryPath,
        credentials: i.sourceCredentials,
        caCertificate: i.sourceCaCertificate,
    };
}

function problemsOf(i: ImagePromotionInputs, phase: "check" | "apply") {
    const checked = checkInputs(i, phase, PROMOTION_INPUTS);
    if (checked.unknown || checked.problems.length > 0) return checked;
    const mismatch = checkSameRegistry(i.sourceApiUrl, i.sourceRepositoryUri);
    if (mismatch) checked.problems.push(`source: ${mismatch}`);
    if (i.sourceRepositoryUri === i.repositoryUri) {
        checked.problems.push(
            `the source ${i.sourceRepositoryUri} is this stack's own repository: a stack cannot promote from itself`,
        );
    }
    return checked;
}

/** Asks both registries (two requests on an unchanged run) and decides. */
export async function evaluatePromotion(
    i: ImagePromotionInputs,
    recorded: string | undefined,
): Promise<PromotionDecision> {
    const [source, destination] = await Promise.all([
        headManifest(endpointOf(sourceRegistry(i)), i.tag),
        headManifest(endpointOf(i), i.tag),
    ]);
    return decidePromotion({
        tag: i.tag,
        sourceName: i.sourceName,
        sourceUri: i.sourceRepositoryUri,
        destinationUri: i.repositoryUri,
        source,
        destination,
        published: i.sourcePublished,
        recorded,
        acknowledged: i.acknowledged,
    });
}

/** A progress line for each large blob: started, every 256 MiB, and done. */
function progressLogger(ref: string): (e: CopyProgress) => void {
    const step = 256 * 1024 * 1024;
    const next = new Map<string, number>();
    const mib = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MiB`;
    return (e) => {
        if (e.total < 64 * 1024 * 1024) return;
        const short = e.digest.slice(0, 19);
        const due = next.get(e.digest) ?? 0;
        if (e.phase === "uploading" && e.bytes >= due) {
            next.set(e.digest, due + step);
            process.stderr.write(`promoting ${ref}: ${short} ${mib(e.bytes)} of ${mib(e.total)}\n`);
        } else if (e.phase !== "uploading") {
            process.stderr.write(`promoting ${ref}: ${short} ${e.phase} (${mib(e.total)})\n`);
        }
    };
}

/** Runs the promotion right before it is recorded: decides again, copies when needed. */
export async function promote(
    i: ImagePromotionInputs,
    previous: Partial<ImagePromotionOutputs> | undefined,
): Promise<ImagePromotionOutputs> {
    const checked = problemsOf(i, "apply");
    if (checked.problems.length > 0) throw new Error(checked.problems.join("\n"));
    const key = recordKeyOf(i) ?? "";
    const histories = historiesOf(previous?.histories, recordKeyOf(previous), previous?.history);
    const history: Record<string, Promoted> = {};
    for (const [t, p] of Object.entries(publishedByKey(i)[key] ?? {}))
        history[t] = { ...p, source: "" };
    Object.assign(history, histories[key]);
    const decision = await evaluatePromotion(i, history[i.tag]?.digest);
    if (decision.action === "refuse") throw new Error(decision.message);
    const ref = `${i.repositoryUri}:${i.tag}`;
    let config: Awaited<ReturnType<typeof getImageConfig>>;
    if (decision.action === "copy") {
        const source = endpointOf(sourceRegistry(i));
        // Before anything is written: the image for this stack's platform, and its labels.
        try {
            config = await getImageConfig(source, decision.digest, i.platform);
        } catch (e) {
            throw new Error(
                `${i.sourceRepositoryUri}@${decision.digest} cannot be promoted as ${ref}: ` +
                    `${(e as Error).message}. Nothing was copied. Fix: set platform to one the ` +
                    `source image has, or publish the version for ${i.platform} there.`,
            );
        }
        const result = await copyImage(source, decision.digest, endpointOf(i), i.tag, {
            onProgress: progressLogger(ref),
        });
        if (result.digest !== decision.digest) {
            throw new Error(
                `${ref} was copied as ${result.digest}, not the source's ${decision.digest}; the copy is not exact.`,
            );
        }
    } else {
        // Already here (rollback): the labels from this stack's own copy.
        config = await getImageConfig(endpointOf(i), decision.digest, i.platform).catch(
            () => undefined,
        );
    }
    histories[key] = {
        ...history,
        [i.tag]: {
            fingerprint: config?.labels[FINGERPRINT_LABEL] ?? "",
            digest: decision.digest,
            source: i.sourceRepositoryUri,
        },
    };
    return {
        sourceRepositoryUri: i.sourceRepositoryUri,
        modelSha256: config?.labels[MODEL_SHA256_LABEL] ?? "",
        ...recorded(i, histories, decision.digest),
        warnings: i.warnings ?? [],
    };
}

/**
 * The promotion's dynamic provider. `check` (every preview and up) asks both registries and
 * refuses what would move a tag or promote a version the source does not have; `create` and
 * `update` decide again and copy; `delete` never touches a registry.
 */
export const imagePromotionProvider: pulumi.dynamic.ResourceProvider = {
    async check(olds: Partial<ImagePromotionInputs>, news: ImagePromotionInputs) {
        const checked = problemsOf(news, "check");
        if (checked.unknown) return { inputs: news };
        if (checked.problems.length > 0) return checkResult(news, checked.problems);
        const histories = historiesOf(
            olds.promotedHistories,
            recordKeyOf(olds),
            olds.promotedHistory,
        );
        const history = (histories[recordKeyOf(news) ?? ""] ??= {});
        // What this stack built here before it promoted is its history too.
        for (const [t, p] of Object.entries(publishedByKey(news)[recordKeyOf(news) ?? ""] ?? {}))
            history[t] ??= p.digest;
        const recorded = history[news.tag] || undefined;
        let decision: PromotionDecision;
        let report: { stop: string[]; warn: string[] };
        try {
            decision = await evaluatePromotion(news, recorded);
            // Every other version this stack promoted: a tag deleted or moved since stops the
            // run here, before anything is copied, unless acknowledged.
            report = await reverifyHistory(
                news,
                endpointOf(news),
                Object.fromEntries(Object.entries(history).map(([t, digest]) => [t, { digest }])),
                news.tag,
            );
        } catch (e) {
            return checkResult(news, [
                `cannot check ${news.sourceRepositoryUri}:${news.tag} and ${news.repositoryUri}:${news.tag}, ` +
                    `so nothing is copied: ${(e as Error).message}`,
            ]);
        }
        if (decision.action === "refuse") return checkResult(news, [decision.message]);
        if (report.stop.length > 0) return checkResult(news, report.stop);
        const destinationDigest = decision.action === "unchanged" ? decision.digest : "";
        history[news.tag] = decision.digest;
        return {
            inputs: {
                ...without(news, "promotedHistory"),
                destinationDigest,
                promotedHistories: histories,
                warnings: report.warn,
            },
        };
    },

    async diff(_id: string, olds: ImagePromotionOutputs, news: ImagePromotionInputs) {
        const moved =
            olds.repositoryUri !== news.repositoryUri ||
            olds.tag !== news.tag ||
            olds.sourceRepositoryUri !== news.sourceRepositoryUri ||
            (news.destinationDigest ?? "") !== olds.digest ||
            // Kept in the outputs for the program's warnings and for `pulumi refresh`.
            JSON.stringify(olds.warnings ?? []) !== JSON.stringify(news.warnings ?? []) ||
            JSON.stringify(olds.acknowledged ?? {}) !== JSON.stringify(news.acknowledged ?? {}) ||
            olds.apiUrl !== news.apiUrl;
        return { changes: moved, replaces: [] };
    },

    read: reverifyRecord,

    ...recording(promote),
};

/** The source-side inputs: enough to ask the source whether it has the version. */
export interface PromotionSourceCheckInputs {
    readonly tag: string;
    readonly sourceName: string;
    readonly sourceRepositoryUri: string;
    readonly sourceApiUrl: string;
    readonly sourceRepositoryPath: string;
    readonly sourceCredentials?: RegistryInputs["credentials"];
    readonly sourceCaCertificate?: string;
    /** The digest the source stack published for the tag; "" for none; absent for a repository. */
    readonly sourcePublished?: string;
    /**
     * Set by `check`, carried from run to run: tags this check passed before. A rollback to one
     * of them is left to the promotion (this stack may hold it although the source lost it).
     */
    readonly passedTags?: readonly string[];
}

/** Copies one version from the source repository into this one, by digest. */
export class ImagePromotion extends ProviderResource {
    declare public readonly digest: pulumi.Output<string>;
    declare public readonly modelSha256: pulumi.Output<string>;
    declare public readonly history: pulumi.Output<Record<string, PublishedVersion>>;
    declare public readonly warnings: pulumi.Output<string[]>;

    constructor(
        name: string,
        args: Record<string, pulumi.Input<unknown>>,
        opts?: pulumi.CustomResourceOptions,
    ) {
        const outputs = ["digest", "modelSha256", "history", "warnings"];
        super(imagePromotionProvider, "ImagePromotion", name, args, outputs, opts);
    }
}
