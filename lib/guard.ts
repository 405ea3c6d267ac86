/**
 * The immutability rule for published model versions, as plain decisions:
 *   - a tag this stack has not published may be pushed only if the registry does not have it;
 *   - a tag this stack has published may be pushed again only with the same content
 *     (and then nothing is pushed at all).
 * ECR Public has no tag immutability setting, so this is where it is enforced.
 */
import { ManifestLookup } from "./registryClient";

/** What the guard knows about one publication: where, which tag, which content. */
export interface Publication {
    /** `<server>/<path>` of the repository, without tag. */
    readonly repositoryUri: string;
    /** The version tag. */
    readonly tag: string;
    /** Fingerprint of the image content (see `ModelBuildSpec.fingerprint`). */
    readonly fingerprint: string;
}

export type Decision =
    /** Nothing to do: this stack published exactly this content under this tag. */
    | { readonly action: "unchanged" }
    /** The registry must be asked whether the tag exists before deciding. */
    | { readonly action: "lookup" }
    | { readonly action: "publish" }
    | { readonly action: "refuse"; readonly message: string };

/**
 * First step: decide from this stack's own record (`published`, the guard's previous inputs) and
 * the publication it is asked for. Returns `lookup` when only the registry can tell.
 */
export function decideFromState(published: Publication | undefined, wanted: Publication): Decision {
    if (
        published &&
        published.repositoryUri === wanted.repositoryUri &&
        published.tag === wanted.tag
    ) {
        if (published.fingerprint === wanted.fingerprint) return { action: "unchanged" };
        return {
            action: "refuse",
            message:
                `${wanted.repositoryUri}:${wanted.tag} is already published by this stack with other content, and a ` +
                `published version never changes. The model files, Dockerfile, base image or build args changed ` +
                `but modelVersion did not (published content ${published.fingerprint}, new content ` +
                `${wanted.fingerprint}). Nothing was built or pushed. ` +
                `Fix: publish the change as a new version: pulumi config set modelVersion ${nextVersion(wanted.tag)} ` +
                `(or undo the change to keep ${wanted.tag}).`,
        };
    }
    return { action: "lookup" };
}

/** Second step, for a tag this stack has not published: decide from what the registry holds. */
export function decideFromRegistry(wanted: Publication, remote: ManifestLookup): Decision {
    if (!remote.exists) return { action: "publish" };
    return {
        action: "refuse",
        message:
            `${wanted.repositoryUri}:${wanted.tag} already exists in the registry (digest ${remote.digest}) and was ` +
            `not published by this stack (another stack, a lost state file or a manual push). A published ` +
            `version never changes, so it is not overwritten. Nothing was built or pushed. ` +
            `Fix: pulumi config set modelVersion ${nextVersion(wanted.tag)} ` +
            `(or pull ${wanted.repositoryUri}@${remote.digest} if that is the model you meant).`,
    };
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
