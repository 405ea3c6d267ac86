import * as pulumi from "@pulumi/pulumi";
import {
    Decision,
    Publication,
    Verified,
    UNCLAIM,
    decide,
    indexFor,
    nextVersion,
} from "../lib/publication/guard";
import {
    REQUIRED_INPUTS,
    RegistryInputs,
    checkInputs,
    checkResult,
    endpointOf,
    recordKeyOf,
} from "../lib/publication/publishInputs";
import { getImageConfig, headManifest } from "../lib/oci/client";
import {
    ByRepository,
    ProviderArgs,
    ProviderResource,
    PublishedVersion,
    historiesOf,
    recording,
    reverifyHistory,
    without,
} from "./publicationRecord";

/**
 * What this stack published before this run: its last `repository_uri` and `published_versions`,
 * and `published_by_repository` (every repository it ever published to, by record key).
 */
export interface PublishedBefore {
    readonly repositoryUri: string;
    readonly versions: Readonly<Record<string, PublishedVersion>>;
    readonly byRepository?: ByRepository<PublishedVersion>;
}

/** What the guard and the promotion are told of this stack's past, and report of it. */
export interface HistoryInputs {
    /**
     * What this stack published before this run (its own last outputs, so every version is known
     * from the moment its publishing run ended), built or promoted: never published again with
     * other content, and re-verified like the versions the step itself recorded.
     */
    readonly published?: PublishedBefore;
    /** Set by `check`: the acknowledged tampered versions found, as warnings for the program. */
    readonly warnings?: readonly string[];
}

/** The guard's inputs as the dynamic provider sees them (plain values). */
export interface TagGuardInputs extends RegistryInputs, HistoryInputs, Publication {
    /**
     * Set by `check`, never by the program: the digest under this tag that the guard verified as
     * this content. The engine keeps checked inputs in the state, so the next run's `check` sees it
     * and confirms the tag with one request instead of reading the image config again.
     */
    readonly verifiedDigest?: string;
    /**
     * Set by `check`, never by the program: every tag of every repository (by record key) the
     * guard has verified as this stack's content, with that content and digest, carried from run
     * to run (across version bumps and repository switches, never dropped), so a verified version
     * that later vanishes or moves is reported.
     */
    readonly verifiedHistories?: ByRepository<Verified>;
    /** The previous form of `verifiedHistory`: one repository's, the state's record key. */
    readonly verifiedHistory?: Readonly<Record<string, Verified>>;
    /**
     * Set by `check`, never by the program: the content each tag was cleared for publication
     * with (by record key, then tag), kept in the guard's state before docker.Image can push. A
     * push that lands in a run killed before the record is written is still known: the tag is
     * never published again with other content, even after it was deleted.
     */
    readonly claimed?: ByRepository<string>;
}

/** The guard's arguments: the registry-facing inputs, who publishes, and this stack's past. */
export type TagGuardArgs = ProviderArgs<
    Pick<TagGuardInputs, keyof RegistryInputs | "publisher" | "published">
>;

const GUARD_INPUTS = [...REQUIRED_INPUTS, "publisher"] as const;

/**
 * Asks the registry what the tag holds and decides: the reasons to refuse, or the digest verified
 * as this content ("" when the tag is absent). One HEAD request when the tag is absent or holds
 * the digest this stack verified before; otherwise the image config is read too (by digest, so it
 * is the same image the HEAD saw).
 */
async function guard(
    inputs: TagGuardInputs,
    verified: Verified | undefined,
    phase: "check" | "apply",
): Promise<{ problems: string[]; unknown: boolean; verifiedDigest: string }> {
    const checked = checkInputs(inputs, phase, GUARD_INPUTS);
    if (checked.unknown || checked.problems.length > 0) {
        return { ...checked, verifiedDigest: "" };
    }
    const refused = (problem: string) => ({
        problems: [problem],
        unknown: false,
        verifiedDigest: "",
    });
    const ref = `${inputs.repositoryUri}:${inputs.tag}`;
    let decision: Decision;
    try {
        const endpoint = endpointOf(inputs);
        decision = decide(inputs, await headManifest(endpoint, inputs.tag), verified);
        if (decision.action === "inspect") {
            const { digest } = decision;
            const config = await getImageConfig(endpoint, digest, inputs.platform);
            if (!config) {
                return refused(
                    `${ref} changed while it was being checked (its image ${digest} vanished). ` +
                        `Nothing was built or pushed; run again.`,
                );
            }
            decision = decide(inputs, { exists: true, digest, labels: config.labels }, verified);
        }
    } catch (e) {
        return refused(
            `cannot check whether ${ref} is already published, so nothing is built or pushed: ` +
                (e as Error).message,
        );
    }
    if (decision.action === "refuse") return refused(decision.message);
    const verifiedDigest = decision.action === "adopt" ? decision.digest : "";
    return { problems: [], unknown: false, verifiedDigest };
}

/**
 * Every version this stack is known to have published, by record key: what previous checks
 * verified (any repository: nothing is dropped when the stack switches repositories), and what
 * the stack's last outputs recorded. The wanted repository's are `known[recordKeyOf(wanted)]`.
 */
export function knownHistories(
    previous: Partial<TagGuardInputs> | undefined,
    wanted: TagGuardInputs,
): Record<string, Record<string, Verified>> {
    // The older forms of the state: one repository's history, and before it the last tag alone.
    const { tag, fingerprint, verifiedDigest } = previous ?? {};
    const last =
        tag && fingerprint && verifiedDigest
            ? { tag, fingerprint, digest: verifiedDigest }
            : undefined;
    const all = historiesOf(previous?.verifiedHistories, recordKeyOf(previous), {
        ...(last ? { [last.tag]: last } : {}),
        ...previous?.verifiedHistory,
    });
    for (const [key, versions] of Object.entries(publishedByKey(wanted))) {
        for (const [t, p] of Object.entries(versions)) (all[key] ??= {})[t] = { tag: t, ...p };
    }
    return all;
}

/**
 * The versions this stack's last outputs (`i.published`) record, by record key: every entry of
 * `published_by_repository`, and `published_versions` under its repository's key (`i`'s own when
 * it is `i`'s repository). A stack that built versions here and then promotes keeps them this way.
 */
export function publishedByKey(
    i: Pick<TagGuardInputs, "repositoryUri" | "recordKey" | "published">,
): Record<string, Record<string, PublishedVersion>> {
    const all: Record<string, Record<string, PublishedVersion>> = {};
    const add = (key: string | undefined, versions: object | undefined) => {
        for (const [v, p] of Object.entries(versions ?? {}) as [string, PublishedVersion][]) {
            if (key && typeof p?.digest === "string" && p.digest) {
                (all[key] ??= {})[v] = { fingerprint: p.fingerprint ?? "", digest: p.digest };
            }
        }
    };
    const published = i.published;
    for (const [key, versions] of Object.entries(published?.byRepository ?? {})) add(key, versions);
    if (published?.repositoryUri) {
        const same = published.repositoryUri === i.repositoryUri;
        add(same ? recordKeyOf(i) : published.repositoryUri, published.versions);
    }
    return all;
}

/**
 * Refuses other content under a tag this stack cleared for publication before (its push may have
 * landed in a killed run and the tag been deleted since), unless the user acknowledged that very
 * claim (`<tag>=unclaim:<its first 12 hex>`). Undefined when the claim allows this content.
 */
function claimProblem(wanted: TagGuardInputs, claimed: string | undefined): string | undefined {
    if (!claimed || claimed === wanted.fingerprint) return undefined;
    // `unclaim:` and the claim's first 12 hex digits: it names that claim only, so once the tag
    // is claimed for the new content, the same entry no longer overrides anything.
    const unclaim = `${UNCLAIM}${claimed.replace(/^sha256:/, "").slice(0, 12)}`;
    if (wanted.acknowledged?.[wanted.tag] === unclaim) return undefined;
    const ref = `${wanted.repositoryUri}:${wanted.tag}`;
    const index = indexFor(wanted.acknowledged ?? {}, wanted.tag);
    return (
        `${ref} was cleared for publication by this stack with content ${claimed}, and this run's ` +
        `content is ${wanted.fingerprint}. That earlier run may have pushed it (a job killed after ` +
        `the push records nothing else), so the version is not published with other content, ` +
        `whether or not the tag exists now. Nothing was built or pushed. Fix: publish the change ` +
        `as a new version: pulumi config set modelVersion ${nextVersion(wanted.tag)}; or, if you ` +
        `know nothing was ever pushed under ${wanted.tag} with that content, release that claim ` +
        `(only that one): pulumi config set --path 'acknowledgedTampering[${index}]' ` +
        `${wanted.tag}=${unclaim}`
    );
}

/**
 * The guard's dynamic provider. `check` runs in every preview and up, before anything is built:
 * it asks the registry every time (the registry is the truth, not this stack's state) and refuses
 * there. `create` and `update` ask again right before the push. `delete` never touches the
 * registry. The guard is never replaced (see `diff`).
 */
export const tagGuardProvider: pulumi.dynamic.ResourceProvider = {
    async check(olds: Partial<TagGuardInputs>, news: TagGuardInputs) {
        const key = recordKeyOf(news) ?? "";
        const histories = knownHistories(olds, news);
        const known = (histories[key] ??= {});
        const claims = historiesOf(olds.claimed);
        const result = await guard(news, known[news.tag], "check");
        if (result.unknown || result.problems.length > 0) return checkResult(news, result.problems);
        // A tag absent now may have been pushed by a killed run: only its claimed content passes.
        const claim = result.verifiedDigest ? undefined : claims[key]?.[news.tag];
        const claimed = claimProblem(news, claim);
        if (claimed) return checkResult(news, [claimed]);
        // Every other version this stack published, one request each: a tag deleted or moved
        // since stops the run here, before anything is built, unless acknowledged.
        let report: { stop: string[]; warn: string[] };
        try {
            report = await reverifyHistory(news, endpointOf(news), known, news.tag);
        } catch (e) {
            return checkResult(news, [
                `cannot re-verify the versions this stack published to ${news.repositoryUri}, so ` +
                    `nothing is built or pushed: ${(e as Error).message}`,
            ]);
        }
        if (report.stop.length > 0) return checkResult(news, report.stop);
        if (result.verifiedDigest) {
            known[news.tag] = {
                tag: news.tag,
                fingerprint: news.fingerprint,
                digest: result.verifiedDigest,
            };
        }
        // Kept in the state once the guard's step is applied, before docker.Image can push.
        claims[key] = { ...claims[key], [news.tag]: news.fingerprint };
        return checkResult({
            ...without(news, "verifiedHistory"),
            verifiedDigest: result.verifiedDigest,
            verifiedHistories: histories,
            claimed: claims,
            warnings: report.warn,
        });
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

    ...recording(applied),
};

/** Create and update: the guard asks the registry again, right before the push. */
async function applied(inputs: TagGuardInputs) {
    const known = knownHistories(inputs, inputs)[recordKeyOf(inputs) ?? ""] ?? {};
    const result = await guard(inputs, known[inputs.tag], "apply");
    if (result.problems.length > 0) throw new Error(result.problems.join("\n"));
    return {
        repositoryUri: inputs.repositoryUri,
        tag: inputs.tag,
        fingerprint: inputs.fingerprint,
        publisher: inputs.publisher,
        verifiedDigest: result.verifiedDigest,
        warnings: inputs.warnings ?? [],
    };
}

/**
 * Refuses to let a version tag change content. The model image depends on it, so when it refuses
 * nothing is built or pushed.
 */
export class TagGuard extends ProviderResource {
    declare public readonly tag: pulumi.Output<string>;
    /** The digest the guard found holding this content ("" when it found the tag absent). */
    declare public readonly verifiedDigest: pulumi.Output<string>;
    /** Acknowledged tampered versions this run found (see `tamperReport`). */
    declare public readonly warnings: pulumi.Output<string[]>;

    constructor(name: string, args: TagGuardArgs, opts?: pulumi.CustomResourceOptions) {
        super(tagGuardProvider, "TagGuard", name, args, ["verifiedDigest", "warnings"], opts);
    }
}
