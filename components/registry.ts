import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import {
    Problem,
    checkModelVersion,
    checkPlatform,
    checkPrincipalArn,
    duplicateOf,
} from "../lib/validation";

/** Credentials for a registry: what `docker login` takes. */
export interface RegistryCredentials {
    readonly username: string;
    readonly password: string;
}

/**
 * Where a model image goes and how to authenticate there. This is the seam between "which
 * registry" and "build and push": the image component only sees a `RegistryTarget`, so ECR
 * Public, a private ECR repository or any OCI registry can stand behind it.
 */
export interface RegistryTarget {
    /** Registry host (and port), the server `docker login` and `docker push` talk to, e.g. `public.ecr.aws`. */
    readonly server: pulumi.Input<string>;
    /** Repository reference without tag: `<server>/<path>`, e.g. `public.ecr.aws/abc123/my-model`. */
    readonly repositoryUri: pulumi.Input<string>;
    /** Credentials for pushing and for reading tags; a secret. Absent for an anonymous registry. */
    readonly credentials?: pulumi.Input<RegistryCredentials>;
    /**
     * Base URL of the registry's HTTP API: the server's origin, with no path (docker pushes to
     * `<server>/v2/`, so that is where the guard looks), and no credentials (give them as
     * `credentials`). Defaults to `https://<server>`; a local registry may use
     * `http://127.0.0.1:<port>`.
     */
    readonly apiUrl?: pulumi.Input<string>;
    /** PEM certificate authority to trust for the registry API (a private registry's own CA). */
    readonly caCertificate?: pulumi.Input<string>;
    /**
     * What identifies the repository's stored data when `repositoryUri` may change without it (a
     * local registry moved to another port keeps its volume): the guard's, the record's and the
     * promotion's histories follow it. Defaults to `repositoryUri`.
     */
    readonly recordKey?: pulumi.Input<string>;
}

/** ECR Public's only region: its API and its authorization tokens exist in us-east-1 alone. */
export const ECR_PUBLIC_REGION = "us-east-1";

/** The registry server of every ECR Public repository. */
export const ECR_PUBLIC_SERVER = "public.ecr.aws";

/**
 * Push credentials for ECR Public: a 12-hour token from `ecr-public:GetAuthorizationToken` in
 * us-east-1, whatever the stack's `aws:region`. The caller needs `ecr-public:GetAuthorizationToken`
 * and `sts:GetServiceBearerToken`.
 */
export function ecrPublicCredentials(parent: pulumi.Resource): pulumi.Output<RegistryCredentials> {
    const token = aws.ecrpublic.getAuthorizationTokenOutput(
        { region: ECR_PUBLIC_REGION },
        { parent },
    );
    return secretCredentials(token.userName, token.password);
}

/** A user name and password as one secret `RegistryCredentials`. */
export function secretCredentials(
    username: pulumi.Input<string>,
    password: pulumi.Input<string>,
): pulumi.Output<RegistryCredentials> {
    return pulumi.secret(
        pulumi.all([username, password]).apply(([username, password]) => ({ username, password })),
    );
}

/**
 * The registry API URL of a target: its `apiUrl`, or `https://<server>`. An Output is never
 * nullish, so the default is applied to the resolved value.
 */
export function apiUrlOf(target: {
    readonly apiUrl?: pulumi.Input<string>;
    readonly server: pulumi.Input<string>;
}): pulumi.Output<string> {
    return pulumi
        .all([target.apiUrl, target.server])
        .apply(([url, server]) => url || `https://${server}`);
}

/** The repository path inside its registry: the reference without its server. */
export function repositoryPathOf(repositoryUri: pulumi.Input<string>): pulumi.Output<string> {
    return pulumi.output(repositoryUri).apply((uri) => uri.slice(uri.indexOf("/") + 1));
}

/** The server of a repository reference (`<server>/<path>`). */
export function serverOf(repositoryUri: pulumi.Input<string>): pulumi.Output<string> {
    return pulumi.output(repositoryUri).apply((uri) => uri.slice(0, Math.max(uri.indexOf("/"), 0)));
}

/** Refuses a version or platform an image component cannot publish, before any child exists. */
export function checkImageArgs(version: string, platform: string): void {
    throwFirstProblem([
        ["version", checkModelVersion(version)],
        ["platform", checkPlatform(platform)],
    ]);
}

/** A repository policy granting exactly `actions` to the given principals, and nothing else. */
export function pushOnlyPolicy(principals: readonly string[], actions: readonly string[]) {
    return {
        Version: "2012-10-17",
        Statement: [
            {
                Sid: "AllowPushOnly",
                Effect: "Allow",
                Principal: { AWS: [...principals] },
                Action: [...actions],
            },
        ],
    };
}

/** The checks of a `pushPrincipals` list: each ARN, then no repeats. */
export function principalChecks(
    principals: readonly string[],
    options: { ecrPublic?: boolean } = {},
): [string, Problem | undefined][] {
    return [
        ...principals.map((arn, i): [string, Problem | undefined] => [
            `pushPrincipals[${i}]`,
            checkPrincipalArn(arn, options),
        ]),
        ["pushPrincipals", duplicateOf(principals)],
    ];
}

/**
 * Throws the first problem as an `InputPropertyError` on its property, with the value probably
 * meant: a component refuses bad arguments before it registers any child.
 */
export function throwFirstProblem(checks: readonly [string, Problem | undefined][]): void {
    for (const [propertyPath, problem] of checks) {
        if (problem) {
            const hint =
                problem.suggestion !== undefined
                    ? ` (did you mean ${JSON.stringify(problem.suggestion)}?)`
                    : "";
            throw new pulumi.InputPropertyError({
                propertyPath,
                reason: `${problem.reason}${hint}`,
            });
        }
    }
}
