/**
 * Promotion: a stack publishes another stack's (or repository's) exact image, by digest, instead
 * of building. Plain functions: what `promoteFrom` names, and what to do with a version given what
 * the source and the destination registries hold. The immutability rule is the guard's: a
 * destination tag is written only when absent, and only with the source's digest.
 */
import { ABSENT, TagNow, indexFor, nextVersion } from "./guard";
import { Problem, checkRepositoryName } from "../validation";

/** Where a promoting stack takes its images from. */
export type PromotionSource =
    /** Another stack of this project (or any stack, fully named): its `repository_uri` output. */
    | { readonly kind: "stack"; readonly name: string }
    /** A repository reference, `<server>/<path>` as docker names it. */
    | { readonly kind: "repository"; readonly repositoryUri: string };

/**
 * Parses `promoteFrom`: empty (the stack builds), a stack (`dev`, `org/project/dev`), or a full
 * repository reference without tag (`public.ecr.aws/alias/model`). Returns the source, or the
 * problem with it. `ctx` names this stack, which cannot promote from itself.
 */
export function parsePromotionSource(
    value: string,
    ctx: { project: string; stack: string },
): { source?: PromotionSource; problem?: Problem } {
    const text = value.trim();
    if (text === "") return {};
    const parts = text.split("/");
    const first = parts[0];
    // Docker's rule names a server by a dot, a colon or localhost, but only where a path follows:
    // a single name (dev, dev.eu) is a stack.
    const isServer =
        parts.length > 1 && (first.includes(".") || first.includes(":") || first === "localhost");
    if (!isServer) {
        const isStack =
            (parts.length === 1 || parts.length === 3) &&
            parts.every((p) => /^[A-Za-z0-9_.-]+$/.test(p));
        if (!isStack) {
            return {
                problem: {
                    reason:
                        "expected a stack (dev, or org/project/dev) or a repository reference " +
                        "(public.ecr.aws/<alias>/<name>)",
                },
            };
        }
        const stack = parts[parts.length - 1];
        const project = parts.length === 3 ? parts[1] : ctx.project;
        // Stack names are case-insensitive in Pulumi Cloud: Staging is staging.
        const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
        if (same(stack, ctx.stack) && same(project, ctx.project)) {
            return {
                problem: {
                    reason: `stack "${ctx.stack}" cannot promote from itself; name the stack it takes versions from, or leave promoteFrom empty to build`,
                },
            };
        }
        return { source: { kind: "stack", name: text } };
    }
    if (/[@]/.test(text) || /:[^/]*$/.test(parts.slice(1).join("/"))) {
        // Without its digest and tag; an `@` left is a user's (`bob:token@host/...`): no fix.
        const digestless = text.replace(/@\w+:[0-9a-f]+$/i, "");
        return {
            problem: {
                reason: "give the repository without a tag or digest: the version promoted is modelVersion",
                suggestion: digestless.includes("@")
                    ? undefined
                    : digestless.replace(/(\/[^/:]+):[^/]*$/, "$1"),
            },
        };
    }
    const path = parts.slice(1).join("/");
    if (path === "") {
        return { problem: { reason: "a repository reference needs a path after the server" } };
    }
    const pathProblem = checkRepositoryName(path);
    if (pathProblem) {
        return { problem: { reason: `repository path "${path}": ${pathProblem.reason}` } };
    }
    return { source: { kind: "repository", repositoryUri: text } };
}

/**
 * Why the source has no `tag` to promote, or undefined when it has: its record when it is a stack
 * (`published`, as `decidePromotion` takes it), else whether its tag exists now.
 */
export function notPublished(
    a: { sourceName: string; sourceUri: string; tag: string; published?: string },
    sourceExists: boolean,
): string | undefined {
    if (a.published === undefined ? sourceExists : a.published !== "") return undefined;
    return (
        `${a.sourceName} has not published ${a.tag} (${
            a.published === ""
                ? `its published_versions output has no ${a.tag}`
                : `${a.sourceUri}:${a.tag} does not exist`
        }), so there is nothing to promote, and nothing was created or copied. Fix: publish ` +
        `${a.tag} there first, or set modelVersion to a version it has published.`
    );
}

export type PromotionDecision =
    /** Copy the source image (blobs and exact manifest bytes) to the destination tag. */
    | { readonly action: "copy"; readonly digest: string }
    /** The destination already holds the source's digest: nothing to copy (also rollback). */
    | { readonly action: "unchanged"; readonly digest: string }
    | { readonly action: "refuse"; readonly message: string };

/**
 * Decides the promotion of `tag` from what the source and the destination hold, what the source
 * stack recorded as published (`published`: its digest, "" when it has no such version; undefined
 * for a repository source, which keeps no record), and what this stack promoted under the tag
 * before (`recorded`).
 */
export function decidePromotion(args: {
    readonly tag: string;
    /** `stack dev`, or the source repository, for messages. */
    readonly sourceName: string;
    readonly sourceUri: string;
    readonly destinationUri: string;
    readonly source: TagNow;
    readonly destination: TagNow;
    readonly published?: string;
    readonly recorded?: string;
    /** What the user acknowledged tags hold now (`acknowledgedTampering`), by version. */
    readonly acknowledged?: Readonly<Record<string, string>>;
}): PromotionDecision {
    const { tag, sourceName, source, destination, published, recorded } = args;
    const dest = `${args.destinationUri}:${tag}`;
    const refuse = (message: string): PromotionDecision => ({ action: "refuse", message });

    // This stack's own record comes first: a promoted tag never changes.
    if (recorded && destination.exists && destination.digest !== recorded) {
        return refuse(
            `${dest} was promoted by this stack as ${recorded}, and it now holds ${destination.digest}: ` +
                `someone overwrote it outside this program. Nothing was copied. Fix: restore it (skopeo ` +
                `copy docker://${args.destinationUri}@${recorded} docker://${dest}), or promote a new ` +
                `version.`,
        );
    }
    if (recorded && destination.exists) return { action: "unchanged", digest: recorded };
    // Deleted outside this program: reported, never copied back unnoticed. Once acknowledged,
    // the run below copies the promoted digest back (the same content, if the source has it).
    if (recorded && args.acknowledged?.[tag] !== ABSENT) {
        return refuse(
            `${dest} was promoted by this stack as ${recorded}, and the registry no longer has the ` +
                `tag: someone deleted it outside this program. Anyone who pulls ${tag} now gets ` +
                `nothing. Nothing was copied. Fix: restore it (skopeo copy ` +
                `docker://${args.sourceUri}@${recorded} docker://${dest}); or acknowledge it and ` +
                `let this run copy ${recorded} back: pulumi config set --path ` +
                `'acknowledgedTampering[${indexFor(args.acknowledged ?? {}, tag)}]' ${tag}=${ABSENT}`,
        );
    }

    const unpublished = notPublished(args, source.exists);
    if (unpublished) return refuse(unpublished);
    const wanted = published ?? (source as { digest: string }).digest;
    if (published !== undefined && source.exists && source.digest !== published) {
        if (destination.exists && destination.digest === published) {
            return { action: "unchanged", digest: published };
        }
        return refuse(
            `${sourceName} published ${tag} as ${published}, but ${args.sourceUri}:${tag} now holds ` +
                `${source.digest}: the source's tag moved outside this program, so it is not ` +
                `promoted and nothing was copied. Fix: restore the source's tag, or publish and ` +
                `promote a new version.`,
        );
    }
    if (recorded && recorded !== wanted) {
        return refuse(
            `${dest} was promoted as ${recorded}; the tag has since been deleted, and ` +
                `${sourceName} now has ${wanted} under ${tag}. Copying it would give the version ` +
                `new content, so nothing was copied. Fix: restore ${recorded} under the tag ` +
                `(skopeo copy), or promote a new version.`,
        );
    }
    if (destination.exists) {
        if (destination.digest === wanted) return { action: "unchanged", digest: wanted };
        return refuse(
            `${dest} already holds ${destination.digest}, but ${sourceName} has ${wanted} under ` +
                `${tag}. A published version never changes, so it is not overwritten and nothing ` +
                `was copied. Fix: find out which image is ${tag} before anyone pulls it; to publish ` +
                `the source's image, give it a new version there (${nextVersion(tag)}) and promote that.`,
        );
    }
    if (!source.exists) {
        return refuse(
            `${sourceName} published ${tag} as ${wanted}, but its registry no longer has the tag, ` +
                `so there is nothing to copy. Fix: restore the source's tag, or promote a version it has.`,
        );
    }
    return { action: "copy", digest: wanted };
}
