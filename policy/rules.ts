/**
 * The policy pack's rules as plain functions of a resource (type, properties, URN), so they can
 * be tested without the engine. `index.ts` registers them as mandatory policies.
 */
import { checkModelVersion } from "../lib/validation";

export interface PolicyResource {
    readonly type: string;
    readonly props: Record<string, unknown>;
    /** `urn:pulumi:<stack>::<project>::<type>::<name>`. */
    readonly urn: string;
}

export type Report = (message: string) => void;

/**
 * Stack names that count as production, unless the pack's config says otherwise. Every pattern,
 * this one and a configured one, is matched without regard to case: `Prod` and `PROD` are
 * production stacks too.
 */
export const DEFAULT_PROD_STACK_PATTERN = "^prod(uction)?([-_.].*)?$";

/** Whether `stack` is a production stack: `pattern` matched case-insensitively. */
export function isProdStack(stack: string, pattern = DEFAULT_PROD_STACK_PATTERN): boolean {
    return new RegExp(pattern, "i").test(stack);
}

/** The stack a resource belongs to, from its URN. */
export function stackOf(urn: string): string {
    return urn.split("::")[0].split(":")[2] ?? "";
}

/** The tag of an image reference (`host[:port]/path[:tag][@digest]`), or undefined when it has none. */
export function tagOf(imageName: string): string | undefined {
    const withoutDigest = imageName.split("@")[0];
    const lastSlash = withoutDigest.lastIndexOf("/");
    const colon = withoutDigest.indexOf(":", lastSlash + 1);
    return colon === -1 ? undefined : withoutDigest.slice(colon + 1);
}

/** `docker.Image` tags are SemVer versions; never `latest`, never implied (no tag means `latest`). */
export function imageTagsAreSemver(resource: PolicyResource, report: Report): void {
    if (resource.type !== "docker:index/image:Image") return;
    const imageName = resource.props.imageName;
    if (typeof imageName !== "string") return; // unknown during a preview; checked again on update
    const tag = tagOf(imageName);
    if (tag === undefined) {
        report(
            `image ${imageName} has no tag, which means "latest"; tag it with a SemVer version such as 1.0.0.`,
        );
        return;
    }
    const problem = checkModelVersion(tag);
    if (problem) {
        report(
            `image tag ${JSON.stringify(tag)} of ${imageName} is not allowed: ${problem.reason}.`,
        );
    }
}

/**
 * Production stacks never set `forceDestroy` on a repository: destroying it would delete every
 * version. The stack's `forceDestroy` is ECR Public's `forceDestroy` and private ECR's `forceDelete`.
 */
export function prodRepositoriesKeepImages(
    resource: PolicyResource,
    report: Report,
    prodStackPattern = DEFAULT_PROD_STACK_PATTERN,
): void {
    const forceProperty: Record<string, string> = {
        "aws:ecrpublic/repository:Repository": "forceDestroy",
        "aws:ecr/repository:Repository": "forceDelete",
    };
    const property = forceProperty[resource.type];
    if (property === undefined) return;
    const stack = stackOf(resource.urn);
    if (isProdStack(stack, prodStackPattern) && resource.props[property] === true) {
        report(
            `stack "${stack}" is a production stack, and forceDestroy would let 'pulumi destroy' delete the ` +
                `repository with every published version. Set forceDestroy to false (pulumi config set forceDestroy false).`,
        );
    }
}

/** A private ECR repository, if one is used, has immutable tags. */
export function privateEcrTagsImmutable(resource: PolicyResource, report: Report): void {
    if (resource.type !== "aws:ecr/repository:Repository") return;
    const mutability = resource.props.imageTagMutability;
    if (mutability !== "IMMUTABLE") {
        report(
            `private ECR repository has imageTagMutability ${JSON.stringify(mutability ?? "MUTABLE (the default)")}; ` +
                `set it to "IMMUTABLE" so a published version tag can never be overwritten.`,
        );
    }
}

/**
 * Production stacks publish only what another stack built and tested: they promote (copy by
 * digest) and never build from source. Optional: the pack registers it as `advisory` unless its
 * config sets `enforcementLevel: mandatory`.
 */
export function prodStacksOnlyPromote(
    resource: PolicyResource,
    report: Report,
    prodStackPattern = DEFAULT_PROD_STACK_PATTERN,
): void {
    if (resource.type !== "docker:index/image:Image") return;
    const stack = stackOf(resource.urn);
    if (!isProdStack(stack, prodStackPattern)) return;
    report(
        `stack "${stack}" is a production stack and builds its image from source; production should ` +
            `publish the exact image a previous stage tested. Promote instead: pulumi config set ` +
            `promoteFrom staging (or the stack or repository it takes versions from).`,
    );
}
