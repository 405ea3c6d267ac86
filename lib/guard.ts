/**
 * The immutability rule for published model versions, as plain decisions:
 *   - a tag may be pushed only if the registry does not have it;
 *   - the same tag with the same content as this stack's last publication is left alone
 *     (nothing is built or pushed, and the registry is not asked).
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
    /** Nothing to do: this stack's last publication is exactly this tag and content. */
    | { readonly action: "unchanged" }
    /** The registry must be asked whether the tag exists before deciding. */
    | { readonly action: "lookup" }
    | { readonly action: "publish" }
    | { readonly action: "refuse"; readonly message: string };

/** True when `recorded` (this stack's last publication) is the same repository and tag as `wanted`. */
function sameTag(recorded: Publication | undefined, wanted: Publication): recorded is Publication {
    return recorded?.repositoryUri === wanted.repositoryUri && recorded.tag === wanted.tag;
}

/**
 * First step, from this stack's own record alone (`recorded`: the guard's previous inputs):
 * the same tag with the same content needs nothing, not even a registry call. Anything else
 * needs the registry (`lookup`), since only the registry knows what is really published.
 */
export function decideFromState(recorded: Publication | undefined, wanted: Publication): Decision {
    if (sameTag(recorded, wanted) && recorded.fingerprint === wanted.fingerprint) {
        return { action: "unchanged" };
    }
    return { action: "lookup" };
}

/**
 * Second step, from what the registry holds under the tag. A tag the registry does not have may
 * be published, even if this stack recorded it before (a push that failed after the guard ran).
 * A tag the registry has is never overwritten: the message says whether this stack published it
 * with other content, or someone else did.
 */
export function decideFromRegistry(
    recorded: Publication | undefined,
    wanted: Publication,
    remote: ManifestLookup,
): Decision {
    if (!remote.exists) return { action: "publish" };
    const ref = `${wanted.repositoryUri}:${wanted.tag}`;
    if (sameTag(recorded, wanted)) {
        return {
            action: "refuse",
            message:
                `${ref} is already published by this stack (digest ${remote.digest}) with other content, and a ` +
                `published version never changes. The model files, Dockerfile, base image or build args changed ` +
                `but modelVersion did not (published content ${recorded.fingerprint}, new content ` +
                `${wanted.fingerprint}). Nothing was built or pushed. ` +
                `Fix: publish the change as a new version: pulumi config set modelVersion ${nextVersion(wanted.tag)} ` +
                `(or undo the change to keep ${wanted.tag}).`,
        };
    }
    return {
        action: "refuse",
        message:
            `${ref} already exists in the registry (digest ${remote.digest}) and was not published by this ` +
            `stack (another stack, a lost state file or a manual push). A published version never changes, ` +
            `so it is not overwritten. Nothing was built or pushed. ` +
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
