import * as pulumi from "@pulumi/pulumi";
import { Decision, Publication, Verified, decide } from "../lib/guard";
import {
    REQUIRED_INPUTS,
    RegistryInputs,
    checkInputs,
    endpointOf,
    recordKeyOf,
} from "../lib/publishInputs";
import { getImageConfig, headManifest } from "../lib/registryClient";
import { RegistryInputArgs } from "./registry";

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
}

/** The guard's arguments: the registry-facing inputs, and who publishes. */
export interface TagGuardArgs extends RegistryInputArgs {
    /** `<project>/<stack>` of this stack (the publisher label). */
    readonly publisher: pulumi.Input<string>;
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

/** This stack's record for the tag: what a previous check verified it held. */
function verifiedFrom(
    previous: Partial<TagGuardInputs> | undefined,
    wanted: TagGuardInputs,
): Verified | undefined {
    if (!previous || recordKeyOf(previous) !== recordKeyOf(wanted)) return undefined;
    const recorded = previous.verifiedHistory?.[wanted.tag];
    if (recorded?.digest) return recorded;
    if (previous.verifiedDigest && previous.tag === wanted.tag && previous.fingerprint) {
        return {
            tag: previous.tag,
            fingerprint: previous.fingerprint,
            digest: previous.verifiedDigest,
        };
    }
    return undefined;
}

/** The history to carry on: the previous one (same repository) with this tag's verification. */
function historyAfter(
    previous: Partial<TagGuardInputs> | undefined,
    wanted: TagGuardInputs,
    verifiedDigest: string,
): Record<string, Verified> {
    const history =
        previous && recordKeyOf(previous) === recordKeyOf(wanted)
            ? { ...(previous.verifiedHistory ?? {}) }
            : {};
    if (verifiedDigest) {
        history[wanted.tag] = {
            tag: wanted.tag,
            fingerprint: wanted.fingerprint,
            digest: verifiedDigest,
        };
    }
    return history;
}

/**
 * The guard's dynamic provider. `check` runs in every preview and up, before anything is built:
 * it asks the registry every time (the registry is the truth, not this stack's state) and refuses
 * there. `create` and `update` ask again right before the push. `delete` never touches the
 * registry. The guard is never replaced (see `diff`).
 */
export const tagGuardProvider: pulumi.dynamic.ResourceProvider = {
    async check(olds: Partial<TagGuardInputs>, news: TagGuardInputs) {
        const result = await guard(news, verifiedFrom(olds, news), "check");
        const failures = result.problems.map((reason) => ({ property: "tag", reason }));
        if (result.unknown || failures.length > 0) return { inputs: news, failures };
        const verifiedHistory = historyAfter(olds, news, result.verifiedDigest);
        return {
            inputs: { ...news, verifiedDigest: result.verifiedDigest, verifiedHistory },
            failures,
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
        const found = (olds.verifiedDigest ?? "") !== (news.verifiedDigest ?? "");
        return { changes: found || keys.some((k) => olds[k] !== news[k]), replaces: [] };
    },

    async create(inputs: TagGuardInputs) {
        const result = await guard(inputs, verifiedFrom(inputs, inputs), "apply");
        if (result.problems.length > 0) throw new Error(result.problems.join("\n"));
        return {
            id: inputs.repositoryUri,
            outs: publishedOuts(inputs, result.verifiedDigest),
        };
    },

    async update(_id: string, _olds: TagGuardInputs, news: TagGuardInputs) {
        const result = await guard(news, verifiedFrom(news, news), "apply");
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

    constructor(name: string, args: TagGuardArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            tagGuardProvider,
            name,
            {
                ...args,
                credentials: args.credentials ? pulumi.secret(args.credentials) : undefined,
                verifiedDigest: undefined,
                verifiedHistory: undefined,
            },
            opts,
            "model-registry",
            "TagGuard",
        );
    }
}
