import * as pulumi from "@pulumi/pulumi";
import { Decision, Publication, Verified, decide, tamperReport } from "../lib/guard";
import {
    REQUIRED_INPUTS,
    RegistryInputs,
    checkInputs,
    endpointOf,
    recordKeyOf,
} from "../lib/publishInputs";
import { getImageConfig, headManifest } from "../lib/registryClient";
import { PublishedVersion, reverifyVersions } from "./publicationRecord";
import { RegistryInputArgs } from "./registry";

/** What this stack published before this run: its last `repository_uri` and `published_versions`. */
export interface PublishedBefore {
    readonly repositoryUri: string;
    readonly versions: Readonly<Record<string, PublishedVersion>>;
}

/** The guard's inputs as the dynamic provider sees them (plain values). */
export interface TagGuardInputs extends RegistryInputs {
    /** `<project>/<stack>` of this stack (the publisher label). */
    readonly publisher: string;
    /**
     * Set by `check`, never by the program: the digest under this tag that the guard verified as
     * this content. The engine keeps checked inputs in the state, so the next run's `check` sees it
     * and confirms the tag with one request instead of reading the image config again.
     */
    readonly verifiedDigest?: string;
    /**
     * Set by `check`, never by the program: every tag of this repository the guard has verified
     * as this stack's content, with that content and digest, carried from run to run (and across
     * version bumps), so a verified version that later vanishes or moves is reported.
     */
    readonly verifiedHistory?: Readonly<Record<string, Verified>>;
    /**
     * What this stack published before this run (its own last outputs, so every version is known
     * from the moment its publishing run ended). Versions of another repository are ignored.
     */
    readonly published?: PublishedBefore;
    /** Versions whose tampering the user acknowledged: version -> what the registry holds now. */
    readonly acknowledged?: Readonly<Record<string, string>>;
    /** Set by `check`: the acknowledged tampered versions found, as warnings for the program. */
    readonly warnings?: readonly string[];
}

/** The guard's arguments: the registry-facing inputs, and who publishes. */
export interface TagGuardArgs extends RegistryInputArgs {
    /** `<project>/<stack>` of this stack (the publisher label). */
    readonly publisher: pulumi.Input<string>;
    readonly published?: pulumi.Input<PublishedBefore | undefined>;
    readonly acknowledged?: pulumi.Input<Record<string, string> | undefined>;
}

const GUARD_INPUTS = [...REQUIRED_INPUTS, "publisher"] as const;

/**
 * Asks the registry what the tag holds and decides. One HEAD request when the tag is absent or
 * holds the digest this stack verified before; otherwise the image config is read too (by digest,
 * so it is the same image the HEAD saw).
 */
export async function evaluateGuard(
    inputs: TagGuardInputs,
    verified: Verified | undefined,
): Promise<Decision> {
    const endpoint = endpointOf(inputs);
    const wanted: Publication = {
        repositoryUri: inputs.repositoryUri,
        tag: inputs.tag,
        fingerprint: inputs.fingerprint,
        publisher: inputs.publisher,
    };
    const head = await headManifest(endpoint, inputs.tag);
    const decision = decide(
        wanted,
        head.exists ? { exists: true, digest: head.digest } : { exists: false },
        verified,
    );
    if (decision.action !== "inspect") return decision;
    const config = await getImageConfig(endpoint, decision.digest, inputs.platform);
    if (!config) {
        return {
            action: "refuse",
            message:
                `${inputs.repositoryUri}:${inputs.tag} changed while it was being checked (its image ` +
                `${decision.digest} vanished). Nothing was built or pushed; run again.`,
        };
    }
    return decide(
        wanted,
        { exists: true, digest: decision.digest, labels: config.labels },
        verified,
    );
}

/** The reasons to refuse, or the digest verified as this content ("" when the tag is absent). */
async function guard(
    inputs: TagGuardInputs,
    verified: Verified | undefined,
    phase: "check" | "apply",
): Promise<{ problems: string[]; unknown: boolean; verifiedDigest: string }> {
    const checked = checkInputs(inputs, phase, GUARD_INPUTS);
    if (checked.unknown || checked.problems.length > 0) {
        return { ...checked, verifiedDigest: "" };
    }
    let decision: Decision;
    try {
        decision = await evaluateGuard(inputs, verified);
    } catch (e) {
        const problem =
            `cannot check whether ${inputs.repositoryUri}:${inputs.tag} is already published, so ` +
            `nothing is built or pushed: ${(e as Error).message}`;
        return { problems: [problem], unknown: false, verifiedDigest: "" };
    }
    if (decision.action === "refuse") {
        return { problems: [decision.message], unknown: false, verifiedDigest: "" };
    }
    const verifiedDigest = decision.action === "adopt" ? decision.digest : "";
    return { problems: [], unknown: false, verifiedDigest };
}

/**
 * Every version this stack is known to have published to this repository, with its digest: what
 * previous checks verified (same record key), and what the stack's last outputs recorded.
 */
function knownVersions(
    previous: Partial<TagGuardInputs> | undefined,
    wanted: TagGuardInputs,
): Record<string, Verified> {
    const same = previous !== undefined && recordKeyOf(previous) === recordKeyOf(wanted);
    const known: Record<string, Verified> = same ? { ...(previous.verifiedHistory ?? {}) } : {};
    const { tag, fingerprint, verifiedDigest } = previous ?? {};
    if (same && tag && fingerprint && verifiedDigest && !known[tag]) {
        known[tag] = { tag, fingerprint, digest: verifiedDigest };
    }
    if (wanted.published?.repositoryUri === wanted.repositoryUri) {
        for (const [v, p] of Object.entries(wanted.published.versions ?? {})) {
            if (typeof p?.digest === "string" && p.digest) {
                known[v] = { tag: v, fingerprint: p.fingerprint ?? "", digest: p.digest };
            }
        }
    }
    return known;
}

/** The other known versions against the registry: which stop the run, which only warn. */
async function oldVersions(wanted: TagGuardInputs, known: Record<string, Verified>) {
    const tags = Object.keys(known).filter((t) => t !== wanted.tag);
    const found = await reverifyVersions(endpointOf(wanted), tags);
    return tamperReport(wanted.repositoryUri, known, found, wanted.acknowledged);
}

/**
 * The guard's dynamic provider. `check` runs in every preview and up, before anything is built:
 * it asks the registry every time (the registry is the truth, not this stack's state) and refuses
 * there. `create` and `update` ask again right before the push. `delete` never touches the
 * registry. The guard is never replaced (see `diff`).
 */
export const tagGuardProvider: pulumi.dynamic.ResourceProvider = {
    async check(olds: Partial<TagGuardInputs>, news: TagGuardInputs) {
        const known = knownVersions(olds, news);
        const result = await guard(news, known[news.tag], "check");
        const fail = (reasons: string[]) => ({
            inputs: news,
            failures: reasons.map((reason) => ({ property: "tag", reason })),
        });
        if (result.unknown || result.problems.length > 0) return fail(result.problems);
        // Every other version this stack published, one request each: a tag deleted or moved
        // since stops the run here, before anything is built, unless acknowledged.
        let report: { stop: string[]; warn: string[] };
        try {
            report = await oldVersions(news, known);
        } catch (e) {
            return fail([
                `cannot re-verify the versions this stack published to ${news.repositoryUri}, so ` +
                    `nothing is built or pushed: ${(e as Error).message}`,
            ]);
        }
        if (report.stop.length > 0) return fail(report.stop);
        if (result.verifiedDigest) {
            known[news.tag] = {
                tag: news.tag,
                fingerprint: news.fingerprint,
                digest: result.verifiedDigest,
            };
        }
        return {
            inputs: {
                ...news,
                verifiedDigest: result.verifiedDigest,
                verifiedHistory: known,
                warnings: report.warn,
            },
            failures: [],
        };
    },

    async diff(_id: string, olds: TagGuardInputs, news: TagGuardInputs) {
        // A new tag, repository or content is an in-place update, never a replacement: the guard
        // inherits `protect` from a protected stack, and Pulumi refuses to replace a protected
        // resource. Credentials rotate (ECR tokens last 12 hours) and are not compared.
        // `verifiedDigest` is what `check` just found in the registry: when the tag appeared
        // since the guard last recorded it (the run after a publication, or a push that landed
        // in a killed run), the update records it, so the version's image is adopted, not pushed.
        const keys = ["repositoryUri", "tag", "fingerprint", "publisher"] as const;
        const found =
            (olds.verifiedDigest ?? "") !== (news.verifiedDigest ?? "") ||
            JSON.stringify(olds.warnings ?? []) !== JSON.stringify(news.warnings ?? []);
        return { changes: found || keys.some((k) => olds[k] !== news[k]), replaces: [] };
    },

    async create(inputs: TagGuardInputs) {
        const result = await guard(inputs, knownVersions(inputs, inputs)[inputs.tag], "apply");
        if (result.problems.length > 0) throw new Error(result.problems.join("\n"));
        return {
            id: inputs.repositoryUri,
            outs: publishedOuts(inputs, result.verifiedDigest),
        };
    },

    async update(_id: string, _olds: TagGuardInputs, news: TagGuardInputs) {
        const result = await guard(news, knownVersions(news, news)[news.tag], "apply");
        if (result.problems.length > 0) throw new Error(result.problems.join("\n"));
        return { outs: publishedOuts(news, result.verifiedDigest) };
    },

    async delete() {
        // A published version is never deleted by this program.
    },
};

function publishedOuts(inputs: TagGuardInputs, verifiedDigest: string) {
    return {
        repositoryUri: inputs.repositoryUri,
        tag: inputs.tag,
        fingerprint: inputs.fingerprint,
        publisher: inputs.publisher,
        verifiedDigest,
        warnings: inputs.warnings ?? [],
    };
}

/**
 * Refuses to let a version tag change content. The model image depends on it, so when it refuses
 * nothing is built or pushed.
 */
export class TagGuard extends pulumi.dynamic.Resource {
    declare public readonly repositoryUri: pulumi.Output<string>;
    declare public readonly tag: pulumi.Output<string>;
    declare public readonly fingerprint: pulumi.Output<string>;
    /** The digest the guard found holding this content ("" when it found the tag absent). */
    declare public readonly verifiedDigest: pulumi.Output<string>;
    /** Acknowledged tampered versions this run found (see `tamperReport`). */
    declare public readonly warnings: pulumi.Output<string[]>;

    constructor(name: string, args: TagGuardArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            tagGuardProvider,
            name,
            {
                ...args,
                credentials: args.credentials ? pulumi.secret(args.credentials) : undefined,
                verifiedDigest: undefined,
                verifiedHistory: undefined,
                warnings: undefined,
            },
            opts,
            "model-registry",
            "TagGuard",
        );
    }
}
