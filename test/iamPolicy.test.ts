import * as fs from "fs";
import { Run, runProgram, stackFileConfig } from "./support/program";
import {
    AwsTarget,
    INVOKE_ACTIONS,
    KMS_KEY_ACTIONS,
    KMS_KEY_ARN_PATTERN,
    NeededActions,
    PLACEHOLDERS,
    REGISTRY_ACTIONS,
    REPOSITORY_ARN_PATTERN,
    RESOURCE_ACTIONS,
    arnMatches,
    requiredActions,
    scopeOf,
} from "../lib/iamActions";

interface Statement {
    readonly Sid: string;
    readonly Effect: string;
    readonly Action: string | string[];
    readonly Resource: string | string[];
    readonly [key: string]: unknown;
}

interface PolicyDocument {
    readonly Version: string;
    readonly Statement: Statement[];
}

const readPolicy = (file: string): PolicyDocument =>
    JSON.parse(fs.readFileSync(`iam/${file}`, "utf8")) as PolicyDocument;

const list = (v: string | string[]): string[] => (Array.isArray(v) ? v : [v]);

const actionsOf = (statements: readonly Statement[]): string[] =>
    statements.flatMap((s) => list(s.Action)).sort();

/** What is in `want` and not in `have`, and the reverse, for a readable failure. */
function difference(want: Iterable<string>, have: Iterable<string>) {
    const w = new Set(want);
    const h = new Set(have);
    return {
        missing: [...w].filter((a) => !h.has(a)).sort(),
        extra: [...h].filter((a) => !w.has(a)).sort(),
    };
}

/** Test values for the placeholders (ARN matching only). */
const ACCOUNT = "123456789012";
const REGION = "us-west-2";
const fill = (pattern: string) =>
    pattern
        .replace(/ACCOUNT_ID/g, ACCOUNT)
        .replace(/REGION/g, REGION)
        .replace(/KMS_KEY_ID/g, "0a1b2c3d-4e5f-6789-abcd-ef0123456789");

const TOKEN_INVOKE: Record<AwsTarget, string> = {
    "ecr-public": "aws:ecrpublic/getAuthorizationToken:getAuthorizationToken",
    "ecr-private": "aws:ecr/getAuthorizationToken:getAuthorizationToken",
};

const REPOSITORY_TYPE: Record<AwsTarget, string> = {
    "ecr-public": "aws:ecrpublic/repository:Repository",
    "ecr-private": "aws:ecr/repository:Repository",
};

const POLICY_TYPE: Record<AwsTarget, string> = {
    "ecr-public": "aws:ecrpublic/repositoryPolicy:RepositoryPolicy",
    "ecr-private": "aws:ecr/repositoryPolicy:RepositoryPolicy",
};

/** The registered repository's ARN, as AWS forms it. */
function repositoryArn(target: AwsTarget, inputs: Record<string, any>): string {
    return target === "ecr-public"
        ? `arn:aws:ecr-public::${ACCOUNT}:repository/${inputs.repositoryName}`
        : `arn:aws:ecr:${inputs.region ?? REGION}:${ACCOUNT}:repository/${inputs.name}`;
}

/** One run of the program and the AWS actions derived from what it registered. */
interface VariantRun {
    readonly variant: string;
    readonly run: Run;
    readonly needed: NeededActions;
}

async function runVariant(
    variant: string,
    config: Record<string, string>,
    stack: string,
): Promise<VariantRun> {
    const run = await runProgram(config, { stack });
    return { variant, run, needed: requiredActions(run.recorder) };
}

const KMS_KEY = `arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

/** The configurations each AWS target is run with: every choice that changes what it registers. */
function variants(target: AwsTarget): [string, Record<string, string>, string][] {
    const base: Record<string, string> =
        target === "ecr-public"
            ? { modelVersion: "1.0.0" }
            : { modelVersion: "1.0.0", registry: "ecr-private", "aws:region": REGION };
    const principals = JSON.stringify([
        "arn:aws:iam::123456789012:role/ci",
        "arn:aws:iam::210987654321:root",
    ]);
    return [
        ["builds", base, "dev"],
        ["pushPrincipals", { ...base, pushPrincipals: principals }, "dev"],
        ["forceDestroy", { ...base, forceDestroy: "true" }, "dev"],
        ["promotes from another stack", { ...base, promoteFrom: "dev" }, "staging"],
        ...(target === "ecr-private"
            ? [
                  ["kmsKey", { ...base, kmsKey: KMS_KEY }, "dev"] as [
                      string,
                      Record<string, string>,
                      string,
                  ],
              ]
            : []),
    ];
}

const POLICY_FILE: Record<AwsTarget, string> = {
    "ecr-public": "deployer-ecr-public.json",
    "ecr-private": "deployer-ecr-private.json",
};

describe.each(["ecr-public", "ecr-private"] as const)("the %s deployer policy", (target) => {
    const runs: VariantRun[] = [];
    const policy = readPolicy(POLICY_FILE[target]);

    beforeAll(async () => {
        for (const [variant, config, stack] of variants(target)) {
            runs.push(await runVariant(variant, config, stack));
        }
    }, 300_000);

    it("runs every variant of the program without error", () => {
        expect(runs.map((r) => [r.variant, String(r.run.error ?? "ok")])).toEqual(
            runs.map((r) => [r.variant, "ok"]),
        );
    });

    it(`registers only ${target} AWS resources, its repository and its token invoke in every variant`, () => {
        for (const { variant, run } of runs) {
            const awsTypes = new Set(
                run.recorder.resources.map((r) => r.type).filter((t) => t.startsWith("aws:")),
            );
            const foreign = [...awsTypes].filter((t) => RESOURCE_ACTIONS[t]?.target !== target);
            expect([variant, foreign]).toEqual([variant, []]);
            expect([variant, awsTypes.has(REPOSITORY_TYPE[target])]).toEqual([variant, true]);
            expect([variant, run.recorder.invokes.map((i) => i.token)]).toEqual([
                variant,
                expect.arrayContaining([TOKEN_INVOKE[target]]),
            ]);
        }
    });

    it("grants exactly the actions the program's resources, invokes and registry calls need: every one, nothing more", () => {
        const needed = new Set(runs.flatMap((r) => [...r.needed.keys()]));
        expect(difference(needed, actionsOf(policy.Statement))).toEqual({ missing: [], extra: [] });
    });

    it("needs the repository-policy actions only with pushPrincipals, KMS actions only with a key, push actions always", () => {
        const keysOf = (variant: string) => [
            ...runs.find((r) => r.variant === variant)!.needed.keys(),
        ];
        const service = target === "ecr-public" ? "ecr-public" : "ecr";
        expect(difference(keysOf("builds"), keysOf("pushPrincipals"))).toEqual({
            missing: [],
            extra: [
                `${service}:DeleteRepositoryPolicy`,
                `${service}:GetRepositoryPolicy`,
                `${service}:SetRepositoryPolicy`,
            ],
        });
        if (target === "ecr-private") {
            expect(difference(keysOf("builds"), keysOf("kmsKey"))).toEqual({
                missing: [],
                extra: [...KMS_KEY_ACTIONS].sort(),
            });
        }
        for (const { variant, needed } of runs) {
            expect([variant, [...needed.keys()]]).toEqual([
                variant,
                expect.arrayContaining([...REGISTRY_ACTIONS[target].push]),
            ]);
            if (variant !== "kmsKey") {
                expect([variant, [...needed.keys()].filter((a) => a.startsWith("kms:"))]).toEqual([
                    variant,
                    [],
                ]);
            }
        }
    });

    it("scopes every repository action to the repository ARN pattern, and only the unscopable ones to *", () => {
        expect(policy.Version).toBe("2012-10-17");
        const sids = policy.Statement.map((s) => s.Sid);
        expect(new Set(sids).size).toBe(sids.length);
        for (const s of policy.Statement) {
            expect(Object.keys(s).sort()).toEqual(["Action", "Effect", "Resource", "Sid"]);
            expect(s.Effect).toBe("Allow");
            expect(typeof s.Resource).toBe("string");
            for (const action of list(s.Action)) expect(action).toMatch(/^[a-z-]+:[A-Za-z]+$/);
            const scopes = new Set(list(s.Action).map(scopeOf));
            expect([s.Sid, scopes.size]).toEqual([s.Sid, 1]);
            const [scope] = scopes;
            const expected =
                scope === "unscoped"
                    ? "*"
                    : scope === "kms-key"
                      ? KMS_KEY_ARN_PATTERN
                      : REPOSITORY_ARN_PATTERN[target];
            expect([s.Sid, s.Resource]).toEqual([s.Sid, expected]);
        }
        const all = actionsOf(policy.Statement);
        expect(new Set(all).size).toBe(all.length);
        const unscoped = actionsOf(policy.Statement.filter((s) => s.Resource === "*"));
        expect(unscoped).toEqual([...INVOKE_ACTIONS[TOKEN_INVOKE[target]]].sort());
    });

    it("matches every repository the program registers, and no repository of another name or account", () => {
        const pattern = fill(REPOSITORY_ARN_PATTERN[target]);
        let seen = 0;
        for (const { run } of runs) {
            for (const repo of run.recorder.all(REPOSITORY_TYPE[target])) {
                const arn = repositoryArn(target, repo.inputs);
                expect([arn, arnMatches(pattern, arn)]).toEqual([arn, true]);
                seen++;
            }
        }
        expect(seen).toBe(runs.length);
        const other = repositoryArn(target, {
            repositoryName: "other-team/model",
            name: "other-team/model",
        });
        expect(arnMatches(pattern, other)).toBe(false);
        const ours = repositoryArn(target, {
            repositoryName: "model-registry-dev",
            name: "model-registry-dev",
        });
        expect(arnMatches(pattern, ours)).toBe(true);
        expect(arnMatches(pattern, ours.replace(ACCOUNT, "210987654321"))).toBe(false);
    });

    it("uses only the documented placeholders", () => {
        const text = fs.readFileSync(`iam/${POLICY_FILE[target]}`, "utf8");
        const tokens = new Set(
            policy.Statement.flatMap((s) => list(s.Resource)).flatMap(
                (r) => r.match(/[A-Z][A-Z_]+/g) ?? [],
            ),
        );
        expect([...tokens].filter((t) => !(PLACEHOLDERS as readonly string[]).includes(t))).toEqual(
            [],
        );
        expect(text).toContain("ACCOUNT_ID");
        expect(fill(text)).not.toMatch(/ACCOUNT_ID|REGION|KMS_KEY_ID/);
    });

    it("gives pushers in other accounts exactly the push actions the repository policy grants, and the token", () => {
        const pusher = readPolicy(`pusher-${target}.json`);
        const { run } = runs.find((r) => r.variant === "pushPrincipals")!;
        const granted = JSON.parse(
            run.recorder.one(POLICY_TYPE[target]).inputs.policy,
        ) as PolicyDocument;
        const grantedActions = actionsOf(granted.Statement);
        const scoped = pusher.Statement.filter((s) => s.Resource !== "*");
        expect(actionsOf(scoped)).toEqual(grantedActions);
        expect(grantedActions).toEqual([...REGISTRY_ACTIONS[target].push].sort());
        expect(scoped.map((s) => s.Resource)).toEqual([REPOSITORY_ARN_PATTERN[target]]);
        const token = pusher.Statement.filter((s) => s.Resource === "*");
        expect(actionsOf(token)).toEqual([...INVOKE_ACTIONS[TOKEN_INVOKE[target]]].sort());
    });
});

describe("the ecr-private deployer policy's customer managed key statement", () => {
    const policy = readPolicy("deployer-ecr-private.json");

    it("is a separate, optional statement: the key actions on the key only", () => {
        const kms = policy.Statement.filter((s) =>
            list(s.Action).some((a) => a.startsWith("kms:")),
        );
        expect(kms).toHaveLength(1);
        expect(actionsOf(kms)).toEqual([...KMS_KEY_ACTIONS].sort());
        expect(kms[0].Resource).toBe(KMS_KEY_ARN_PATTERN);
        expect(kms[0].Sid).toMatch(/Optional$/);
        // The table asks for them only when the repository is encrypted with a KMS key.
        const repo = (inputs: Record<string, unknown>) => [
            ...requiredActions({
                resources: [{ type: "aws:ecr/repository:Repository", custom: true, inputs }],
                invokes: [],
            }).keys(),
        ];
        const aes = repo({ encryptionConfigurations: [{ encryptionType: "AES256" }] });
        const withKey = repo({
            encryptionConfigurations: [{ encryptionType: "KMS", kmsKey: KMS_KEY }],
        });
        expect(difference(aes, withKey)).toEqual({
            missing: [],
            extra: [...KMS_KEY_ACTIONS].sort(),
        });
    });
});

describe("the local target", () => {
    it("registers no AWS resource and calls no AWS invoke: it needs no AWS permission", async () => {
        const { run, needed } = await runVariant("local", stackFileConfig("local"), "local");
        expect(run.error).toBeUndefined();
        expect(run.recorder.resources.filter((r) => r.type.startsWith("aws:"))).toEqual([]);
        expect(run.recorder.invokes.filter((i) => i.token.startsWith("aws:"))).toEqual([]);
        expect([...needed.keys()]).toEqual([]);
        // It does publish: the registry calls are there, they just reach no AWS registry.
        expect(run.recorder.all("docker:index/image:Image")).toHaveLength(1);
    }, 60_000);
});

describe("the action table", () => {
    it("fails for an AWS resource type it does not know, naming it and the fix", () => {
        expect(() =>
            requiredActions({
                resources: [{ type: "aws:s3/bucket:Bucket", custom: true, inputs: {} }],
                invokes: [],
            }),
        ).toThrow(/aws:s3\/bucket:Bucket: add its actions to the table in lib\/iamActions\.ts/);
    });

    it("fails for an invoke or a custom resource it does not know", () => {
        expect(() =>
            requiredActions({
                resources: [],
                invokes: [{ token: "aws:ecrpublic/getImages:getImages" }],
            }),
        ).toThrow(/invoke aws:ecrpublic\/getImages:getImages: add its actions/);
        expect(() =>
            requiredActions({
                resources: [
                    {
                        type: "pulumi-nodejs:dynamic/model-registry:Cleaner",
                        custom: true,
                        inputs: {},
                    },
                ],
                invokes: [],
            }),
        ).toThrow(/Cleaner: add its actions/);
    });

    it("ignores components and providers, which call no AWS API themselves", () => {
        const needed = requiredActions({
            resources: [
                { type: "model-registry:index:ModelRepository", custom: false, inputs: {} },
                { type: "pulumi:providers:aws", custom: true, inputs: {} },
            ],
            invokes: [],
        });
        expect(needed.size).toBe(0);
    });

    it("maps registry calls to nothing when no AWS repository is registered (the local target)", () => {
        const needed = requiredActions({
            resources: [
                { type: "docker:index/image:Image", custom: true, inputs: {} },
                { type: "docker:index/container:Container", custom: true, inputs: {} },
            ],
            invokes: [],
        });
        expect(needed.size).toBe(0);
    });

    it("matches ARNs the way IAM does: * spans /, ? is one character, the rest is literal", () => {
        expect(
            arnMatches(
                "arn:aws:ecr-public::1:repository/m-*",
                "arn:aws:ecr-public::1:repository/m-a/b",
            ),
        ).toBe(true);
        expect(
            arnMatches("arn:aws:ecr:r:1:repository/m-?", "arn:aws:ecr:r:1:repository/m-ab"),
        ).toBe(false);
        expect(arnMatches("arn:aws:ecr:r:1:repository/m.x", "arn:aws:ecr:r:1:repository/m-x")).toBe(
            false,
        );
        expect(arnMatches("arn:aws:ecr:r:1:repository/M-*", "arn:aws:ecr:r:1:repository/m-x")).toBe(
            false,
        );
    });
});

describe("the README's permission list, fixed (issue #10)", () => {
    const policy = readPolicy("deployer-ecr-public.json");

    it("lets `pulumi destroy` delete the repository and untag it, scoped to the repository", () => {
        const scoped = policy.Statement.filter(
            (s) => s.Resource === REPOSITORY_ARN_PATTERN["ecr-public"],
        );
        expect(actionsOf(scoped)).toEqual(
            expect.arrayContaining(["ecr-public:DeleteRepository", "ecr-public:UntagResource"]),
        );
        // Without DeleteRepository, destroy answers AccessDenied instead of the promised
        // RepositoryNotEmptyException; forceDestroy only changes the call's `force` flag.
        expect(RESOURCE_ACTIONS["aws:ecrpublic/repository:Repository"].delete).toContain(
            "ecr-public:DeleteRepository",
        );
    });

    it("grants nothing on every resource but the two token actions", () => {
        const star = policy.Statement.filter((s) => list(s.Resource).includes("*"));
        expect(actionsOf(star)).toEqual([
            "ecr-public:GetAuthorizationToken",
            "sts:GetServiceBearerToken",
        ]);
    });
});
