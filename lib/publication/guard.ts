/**
 * The immutability rule for published model versions, as plain decisions. ECR Public has no tag
 * immutability setting, so this is where it is enforced, and the registry is the truth:
 *   - a tag the registry does not have may be published;
 *   - a tag whose image carries this content's fingerprint label is already this content: it is
 *     adopted (never pushed again), which is also how a retried push and a rollback work;
 *   - any other tag is never overwritten.
 * The stack's own record only saves requests (a digest it verified before) and detects a tag that
 * moved or vanished outside this program; it never allows a push on its own.
 */
import type { RegistryInputs } from "./publishInputs";

/** Label with the content fingerprint of the build (`ModelBuildSpec.fingerprint`). */
export const FINGERPRINT_LABEL = "model-registry.fingerprint";
/** Label naming the stack that built the image: `<project>/<stack>`. */
export const PUBLISHER_LABEL = "model-registry.publisher";
/** Standard OCI label with the source revision, named in rollback advice. */
export const REVISION_LABEL = "org.opencontainers.image.revision";

/** What the guard knows about one publication: where, which tag, which content, by whom. */
export interface Publication extends Pick<RegistryInputs, "repositoryUri" | "tag" | "fingerprint"> {
    /** `<project>/<stack>` of this stack (the publisher label). */
    readonly publisher: string;
}

/**
 * What a registry holds under a tag: absent, or a manifest digest (and the image's labels, once
 * its config was read).
 */
export type TagNow =
    | { readonly exists: false }
    | {
          readonly exists: true;
          readonly digest: string;
          readonly labels?: Readonly<Record<string, string>>;
      };

/** This stack's record for the same tag: the digest it verified as this content. */
export interface Verified {
    readonly tag: string;
    readonly fingerprint: string;
    readonly digest: string;
}

export type Decision =
    /** The registry does not have the tag: build and push. */
    | { readonly action: "publish" }
    /** The tag already holds this content: push nothing, point the outputs at `digest`. */
    | { readonly action: "adopt"; readonly digest: string }
    /** The tag exists; its image config (labels) must be read before deciding. */
    | { readonly action: "inspect"; readonly digest: string }
    | { readonly action: "refuse"; readonly message: string };

/**
 * Decides a publication from what the registry holds (`remote`) and, when this stack verified the
 * same tag before, that record (`verified`).
 */
export function decide(wanted: Publication, remote: TagNow, verified?: Verified): Decision {
    const ref = `${wanted.repositoryUri}:${wanted.tag}`;
    const known = verified?.tag === wanted.tag && verified.digest ? verified : undefined;
    if (!remote.exists) {
        if (known) {
            return {
                action: "refuse",
                message:
                    `${ref} was published as ${known.digest} (verified by this stack), and the registry no ` +
                    `longer has the tag: someone deleted it outside this program. Publishing it again would ` +
                    `give the version new content, so nothing was built or pushed. Fix: restore the tag ` +
                    `(skopeo copy docker://${wanted.repositoryUri}@${known.digest} docker://${ref}), or ` +
                    `publish a new version: pulumi config set modelVersion ${nextVersion(wanted.tag)}.`,
            };
        }
        return { action: "publish" };
    }
    if (known && known.digest !== remote.digest) {
        return {
            action: "refuse",
            message:
                `${ref} moved: this stack verified it as ${known.digest}, and the registry now holds ` +
                `${remote.digest} under the tag. Someone overwrote it outside this program; anyone who ` +
                `pulled the tag may have other content now. Nothing was built or pushed. Fix: restore ` +
                `it (skopeo copy docker://${wanted.repositoryUri}@${known.digest} docker://${ref}), ` +
                `or publish a new version: pulumi config set modelVersion ${nextVersion(wanted.tag)}.`,
        };
    }
    if (known && known.fingerprint === wanted.fingerprint) {
        return { action: "adopt", digest: remote.digest };
    }
    if (!remote.labels) return { action: "inspect", digest: remote.digest };

    const published = remote.labels[FINGERPRINT_LABEL];
    if (published === wanted.fingerprint) return { action: "adopt", digest: remote.digest };
    if (!published) {
        return {
            action: "refuse",
            message:
                `${ref} already exists in the registry (digest ${remote.digest}) and was not published ` +
                `by this program: its image has no ${FINGERPRINT_LABEL} label (another tool, or a manual ` +
                `push, or a Dockerfile without the label). A published version never changes, so it ` +
                `is not overwritten. Nothing was built or pushed. Fix: pulumi config set modelVersion ` +
                `${nextVersion(wanted.tag)} (or pull ${wanted.repositoryUri}@${remote.digest} if that ` +
                `is the model you meant). If this stack published ${wanted.tag} and someone overwrote ` +
                `it, 'pulumi stack output published_versions' shows the digest it recorded; restore ` +
                `it with skopeo copy docker://${wanted.repositoryUri}@<that digest> docker://${ref}.`,
        };
    }
    const publisher = remote.labels[PUBLISHER_LABEL];
    const by =
        publisher === wanted.publisher
            ? "by this stack"
            : publisher
              ? `by stack ${publisher}`
              : "by this program";
    const revision = remote.labels[REVISION_LABEL];
    const rollback = revision
        ? `to go back to ${wanted.tag}, build from the sources it was published from (revision ${revision}).`
        : `to go back to ${wanted.tag}, build from the sources it was published from.`;
    return {
        action: "refuse",
        message:
            `${ref} is already published ${by} with other content: the registry holds ${remote.digest} ` +
            `(content ${published}), and this run's content is ${wanted.fingerprint}. The model files, ` +
            `their paths or modes, the Dockerfile, the base image, the build args or the docker ` +
            `provider version differ from that publication (docker.Image would build and push ` +
            `again), and a ` +
            `published version never changes, so nothing was built or pushed. Fix: publish the change ` +
            `as a new version: pulumi config set modelVersion ${nextVersion(wanted.tag)}; or, ${rollback}`,
    };
}

/** The digest in `repo@sha256:...` (docker.Image's `repoDigest`), or undefined. */
export function digestOf(repoDigest: string | undefined): string | undefined {
    const at = repoDigest?.lastIndexOf("@") ?? -1;
    const digest = at >= 0 ? repoDigest!.slice(at + 1) : undefined;
    return digest && /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(digest)
        ? digest
        : undefined;
}

/**
 * The next version to suggest: 1.1.0 -> 1.1.1; a pre-release counts up its last number
 * (1.0.0-rc.1 -> 1.0.0-rc.2) or gets one (2.0.0-beta -> 2.0.0-beta.1).
 */
export function nextVersion(version: string): string {
    if (version.includes("-")) {
        const pre = /^(.*[.-])(\d+)$/.exec(version);
        return pre ? `${pre[1]}${Number(pre[2]) + 1}` : `${version}.1`;
    }
    const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
    return m ? `${m[1]}.${m[2]}.${Number(m[3]) + 1}` : "<next version>";
}

/**
 * What a user writes in `acknowledgedTampering` for a version whose tag was deleted: the value
 * for an overwritten one is the digest the tag holds now.
 */
export const ABSENT = "absent";

/**
 * The prefix of an `acknowledgedTampering` value that releases one claim of a version (see
 * `claimProblem` in components/tagGuard.ts): `unclaim:<first 12 hex of the claimed fingerprint>`.
 */
export const UNCLAIM = "unclaim:";

/**
 * The item of the `acknowledgedTampering` list (`<version>=<digest|absent|unclaim:…>`) that a new
 * acknowledgement of `tag` goes to: the next one (the list's length, or `next` when the same
 * message gives others), or, for a version listed already, its own item, named by its text: a
 * dynamic provider gets the list as an object whose keys the engine sorts, so its position is
 * not known here.
 */
export function indexFor(
    acknowledged: Readonly<Record<string, string>>,
    tag: string,
    next = Object.keys(acknowledged).length,
): string {
    return Object.hasOwn(acknowledged, tag)
        ? `<the index of ${tag}=${acknowledged[tag]}>`
        : String(next);
}

/**
 * The recorded versions whose tags no longer hold the recorded digest, as messages: `stop` for
 * those not acknowledged (the run must stop before anything is built), `warn` for those the user
 * acknowledged with exactly what the registry holds now (`acknowledged[version]`: that digest,
 * or `absent`). An acknowledgement of another state does not count: a tag that moves again stops
 * the run again.
 */
export function tamperReport(
    repositoryUri: string,
    recorded: Readonly<Record<string, { readonly digest: string }>>,
    found: Readonly<Record<string, TagNow>>,
    acknowledged: Readonly<Record<string, string>> = {},
): { stop: string[]; warn: string[] } {
    const stop: string[] = [];
    const warn: string[] = [];
    // Each new acknowledgement its own item: pasting every fix keeps them all.
    let next = Object.keys(acknowledged).length;
    for (const tag of Object.keys(found).sort()) {
        const was = recorded[tag]?.digest;
        const state = found[tag];
        const now = state.exists ? state.digest : ABSENT;
        if (!was || now === was) continue;
        const ref = `${repositoryUri}:${tag}`;
        const what = state.exists
            ? `the registry now holds ${now} under the tag (overwritten outside this program)`
            : "the registry no longer has the tag (deleted outside this program)";
        const fact = `${ref} was published by this stack as ${was}, and ${what}.`;
        if (acknowledged[tag] === now) {
            warn.push(`${fact} Acknowledged in acknowledgedTampering; this run carries on.`);
            continue;
        }
        const index = indexFor(acknowledged, tag, next);
        if (!Object.hasOwn(acknowledged, tag)) next++;
        stop.push(
            `${fact} Anyone who pulls ${tag} now gets ${state.exists ? "other content" : "nothing"}. ` +
                `This run stops before anything is built or pushed. Fix: restore it (skopeo copy ` +
                `docker://${repositoryUri}@${was} docker://${ref}) if the registry still has that ` +
                `image; or, if it cannot be restored, acknowledge it and carry on: pulumi config set ` +
                `--path 'acknowledgedTampering[${index}]' ${tag}=${now}`,
        );
    }
    return { stop, warn };
}
