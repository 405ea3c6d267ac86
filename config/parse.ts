/**
 * parseConfig: every key's raw text checked and read, with its default applied. Every problem is
 * collected, so the user sees all of them in one message, each with the command that fixes it.
 */
import * as pulumi from "@pulumi/pulumi";
import { RawConfig, StackConfig, StackName } from "./keys";
import { formatProblems } from "./messages";
import { ConfigReader, unknownKeyProblems } from "./reader";
import { readBuild, readLabels } from "./build";
import { readCatalog, readRepository, readRepositoryName, readTargetSettings } from "./target";
import { readAcknowledgedTampering, readModelVersion, readPromotionSource } from "./version";

/**
 * `setKeys` are the full names of every key set for the stack (`<namespace>:<key>`, as
 * `pulumi.runtime.allConfig()` lists them); a key of this project's namespace that the program
 * does not read (`model-registry:modelversion`) is reported with the key that was probably meant.
 * `secretValues`: the keys set with --secret, whose values no message shows.
 */
export function parseConfig(
    raw: RawConfig,
    ctx: StackName,
    registryPassword: pulumi.Output<string> | undefined,
    setKeys: readonly string[],
    secretValues: ReadonlySet<string>,
): StackConfig {
    const r = new ConfigReader(raw, registryPassword);
    // The checks run in this order, which is the order of the message's problems.
    const unknown = unknownKeyProblems(setKeys, ctx.project, (key) => r.isSet(key));
    r.problems.push(...unknown.problems);
    if (registryPassword !== undefined && !secretValues.has("registryPassword")) {
        r.problems.push({
            key: "registryPassword",
            value: undefined,
            shown: "is set in plain text",
            reason: "a password is kept only as a secret (encrypted in the stack file, masked in output); set it again with --secret, which prompts for it",
            fix: "pulumi config set --secret registryPassword",
        });
    }
    const modelVersion = readModelVersion(r, unknown.meant.has("modelVersion"));
    const repositoryName = readRepositoryName(r, ctx);
    const promotion = readPromotionSource(r, ctx);
    const promoting = promotion.source !== undefined || promotion.problem !== undefined;
    const build = readBuild(r, promoting);
    const catalog = readCatalog(r, build.platform);
    const { registry, pushPrincipals, ...repository } = readRepository(r);
    const labels = readLabels(r);
    const target = readTargetSettings(r, registry, pushPrincipals);
    const acknowledgedTampering = readAcknowledgedTampering(r);

    if (r.problems.length > 0 || registry === undefined) {
        throw new pulumi.RunError(formatProblems(r.problems, ctx, secretValues));
    }
    return {
        modelVersion,
        repositoryName,
        ...build,
        catalog,
        ...repository,
        pushPrincipals,
        ...labels,
        promoteFrom: promotion.source,
        registry,
        ...target,
        acknowledgedTampering,
    };
}
