/**
 * Which version a stack publishes and from where: modelVersion, promoteFrom (with the check that
 * a stack it names has a stack file here), and the tampered versions the user acknowledges.
 */
import { listStacks, stackFileName } from "../lib/stackFiles";
import { Problem, checkModelVersion, editDistance } from "../lib/validation";
import { PromotionSource, parsePromotionSource } from "../lib/publication/promotion";
import { CONFIG_KEYS, StackName } from "./keys";
import { ConfigReader } from "./reader";

/** Required, SemVer. `misspelt`: reported already as a misspelt key, with the fix that moves it. */
export function readModelVersion(r: ConfigReader, misspelt: boolean): string {
    const modelVersion = r.raw.modelVersion;
    if (modelVersion === undefined) {
        if (!misspelt) {
            r.fail("modelVersion", undefined, {
                reason: "every stack publishes exactly one model version, so it must be set explicitly (a SemVer version such as 1.0.0)",
            });
        }
        return "";
    }
    r.fail("modelVersion", modelVersion, checkModelVersion(modelVersion));
    return modelVersion;
}

/** A promoting stack copies another stack's image and builds nothing. */
export function readPromotionSource(
    r: ConfigReader,
    ctx: StackName,
): { source?: PromotionSource; problem?: Problem } {
    const promotion = parsePromotionSource(r.str("promoteFrom"), ctx);
    r.fail("promoteFrom", r.raw.promoteFrom, promotion.problem);
    if (promotion.source?.kind === "stack" && !promotion.source.name.includes("/")) {
        r.fail("promoteFrom", r.raw.promoteFrom, checkStackFile(promotion.source.name, ctx.stack));
    }
    return promotion;
}

/**
 * A stack of this project named in promoteFrom has a stack file here: every stack of the project
 * sets modelVersion, which lives in its `Pulumi.<stack>.yaml`. A misspelt name is caught here,
 * before the run looks for a stack that does not exist.
 */
function checkStackFile(stack: string, self: string): Problem | undefined {
    const stacks = listStacks(".");
    if (stacks.includes(stack)) return undefined;
    // Never this stack itself, which cannot promote from itself.
    const near = stacks.find(
        (s) =>
            s !== self && (s.toLowerCase() === stack.toLowerCase() || editDistance(s, stack) <= 2),
    );
    return {
        reason: `this project has no stack "${stack}" (no ${stackFileName(".", stack)} here; its stacks: ${stacks.join(", ")})${near ? `; did you mean ${near}?` : ""}`,
        suggestion: near,
    };
}

/** Each `<version>=<digest|absent|unclaim:<12 hex>>` once: the guard looks a version up by name. */
export function readAcknowledgedTampering(r: ConfigReader): Record<string, string> {
    const acknowledged: Record<string, string> = {};
    // Each `rm --path` moves the items after it up: the fixes, run in order, name where an item
    // is by then.
    let removed = 0;
    r.list("acknowledgedTampering").forEach((item, index) => {
        const at = `acknowledgedTampering[${index - removed}]`;
        const m = /^([^=\s]+)=(sha256:[0-9a-f]{64}|absent|unclaim:[0-9a-f]{12})$/.exec(item);
        const version = m?.[1] ?? "";
        const problem = m
            ? checkModelVersion(version)
            : {
                  reason: "expected <version>=<digest>, such as 1.0.0=sha256:<64 hex>, 1.0.0=absent or 1.0.0=unclaim:<12 hex>, as the run's message gives it",
              };
        if (problem) {
            const fix = `pulumi config set --path '${at}' ${CONFIG_KEYS.acknowledgedTampering.placeholder}`;
            r.fail("acknowledgedTampering", item, { reason: problem.reason, fix }, index);
        } else if (Object.hasOwn(acknowledged, version)) {
            r.fail(
                "acknowledgedTampering",
                item,
                {
                    reason: `${version} is acknowledged in an earlier item too; keep one (the state the registry holds now)`,
                    fix: `pulumi config rm --path '${at}'`,
                },
                index,
            );
            removed++;
        } else {
            acknowledged[version] = m![2];
        }
    });
    return acknowledged;
}
