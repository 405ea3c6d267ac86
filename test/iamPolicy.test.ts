/**
 * The IAM policies in iam/, checked against what the program calls. Each AWS resource or invoke
 * in the program's source is in AWS_CALLS with the actions its provider calls over its whole life
 * (create, read, update, delete), from the AWS provider's CRUD code (terraform-provider-aws
 * `internal/service/ecr{,public}`, which @pulumi/aws wraps) and the ECR service authorization
 * reference. Each environment's deployer policy grants exactly those on its own repository, reads
 * its promotion source, and holds nothing on any other repository.
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";

type Target = "ecr-public" | "ecr-private";

/** Registry calls: pushing (docker push, a promotion's copy) and pulling (guard, record, copy). */
const PUSH = ["BatchCheckLayerAvailability", "CompleteLayerUpload", "InitiateLayerUpload"]
    .concat(["PutImage", "UploadLayerPart"])
    .sort();
/** ECR Public repositories are readable by anyone: ECR Public has no pull actions at all. */
const PULL: Record<Target, string[]> = {
    "ecr-public": [],
    "ecr-private": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
};
/**
 * The customer managed key (`kmsKey`), used only by ECR on the deployer's behalf: ECR describes
 * the key and creates two grants when it creates the repository, and retires them when it deletes
 * it. `kms:ViaService` limits every KMS action to calls ECR makes in the stack's region; a grant
 * must also be for an AWS resource. `kms:GrantIsForAWSResource` is in the request of CreateGrant
 * (ListGrants, RevokeGrant) only: on DescribeKey or RetireGrant a Bool on it would deny them.
 */
const VIA_ECR = { StringEquals: { "kms:ViaService": "ecr.REGION.amazonaws.com" } };
const KMS_STATEMENTS = [
    {
        Sid: "UseCustomerManagedKeyOptional",
        Action: ["kms:DescribeKey", "kms:RetireGrant"],
        Resource: "arn:aws:kms:REGION:ACCOUNT_ID:key/KMS_KEY_ID",
        Condition: VIA_ECR,
    },
    {
        Sid: "CreateGrantForEcrOptional",
        Action: ["kms:CreateGrant"],
        Resource: "arn:aws:kms:REGION:ACCOUNT_ID:key/KMS_KEY_ID",
        Condition: { Bool: { "kms:GrantIsForAWSResource": "true" }, ...VIA_ECR },
    },
];

/**
 * What each AWS call of the program needs. Create also authorizes TagResource (tags go with
 * CreateRepository); every create and update ends with a read; delete waits with
 * DescribeRepositories. Left out on purpose:
 * - `ecr:PutImageTagMutability`: the provider calls it only when imageTagMutability changes, and
 *   the program always writes IMMUTABLE (checked below). With it, a deployer could switch a
 *   repository to MUTABLE and overwrite a published tag.
 * Kept on purpose:
 * - `ecr:PutLifecyclePolicy`: the lifecycle policy's create calls it, once per repository (its
 *   text is fixed, so it is never updated; a change would replace it, a create again). IAM cannot
 *   grant an action for creation only. What it could do (expire the repository's own images) is
 *   already within DeleteRepository, which `pulumi destroy` needs, and it reaches no other
 *   repository.
 */
const AWS_CALLS: Record<string, { target: Target; actions: string[] }> = {
    "aws.ecrpublic.Repository": {
        target: "ecr-public",
        actions: ["CreateRepository", "TagResource", "DescribeRepositories"]
            .concat(["GetRepositoryCatalogData", "ListTagsForResource", "PutRepositoryCatalogData"])
            .concat(["UntagResource", "DeleteRepository"]),
    },
    "aws.ecrpublic.RepositoryPolicy": {
        target: "ecr-public",
        actions: ["SetRepositoryPolicy", "GetRepositoryPolicy", "DeleteRepositoryPolicy"],
    },
    "aws.ecrpublic.getAuthorizationTokenOutput": {
        target: "ecr-public",
        actions: ["GetAuthorizationToken", "sts:GetServiceBearerToken"],
    },
    "aws.ecr.Repository": {
        target: "ecr-private",
        actions: ["CreateRepository", "TagResource", "DescribeRepositories"]
            .concat(["ListTagsForResource", "PutImageScanningConfiguration", "UntagResource"])
            .concat(["DeleteRepository"]),
    },
    "aws.ecr.LifecyclePolicy": {
        target: "ecr-private",
        actions: ["PutLifecyclePolicy", "GetLifecyclePolicy", "DeleteLifecyclePolicy"],
    },
    "aws.ecr.RepositoryPolicy": {
        target: "ecr-private",
        actions: ["SetRepositoryPolicy", "GetRepositoryPolicy", "DeleteRepositoryPolicy"],
    },
    "aws.ecr.getAuthorizationTokenOutput": {
        target: "ecr-private",
        actions: ["GetAuthorizationToken"],
    },
};
/** Token actions, which IAM accepts only on `"*"`. */
const UNSCOPED = /GetAuthorizationToken|GetServiceBearerToken/;

const service = (target: Target) => (target === "ecr-public" ? "ecr-public" : "ecr");
const qualify = (target: Target, action: string) =>
    action.includes(":") ? action : `${service(target)}:${action}`;
const repositoryArn = (target: Target, name: string, region = "REGION") =>
    target === "ecr-public"
        ? `arn:aws:ecr-public::ACCOUNT_ID:repository/${name}`
        : `arn:aws:ecr:${region}:ACCOUNT_ID:repository/${name}`;

/** Every action the program's calls on `target` need, scoped ones and token ones. */
function needed(target: Target): { scoped: string[]; token: string[] } {
    const all = Object.values(AWS_CALLS)
        .filter((c) => c.target === target)
        .flatMap((c) => c.actions.map((a) => qualify(target, a)))
        .concat(
            PUSH.map((a) => qualify(target, a)),
            PULL[target],
        );
    const unique = [...new Set(all)].sort();
    return {
        scoped: unique.filter((a) => !UNSCOPED.test(a)),
        token: unique.filter((a) => UNSCOPED.test(a)),
    };
}

/** The policy each stack's deployer must have: its own repository, read on its source. */
function expectedPolicy(target: Target, stack: string, source: string | undefined) {
    const { scoped, token } = needed(target);
    const statement = [
        { Sid: "DeployOwnRepository", Action: scoped, Resource: repositoryArn(target, stack) },
        ...(source && PULL[target].length > 0
            ? [
                  {
                      Sid: "ReadPromotionSource",
                      Action: PULL[target],
                      // The source stack may be in another region of the account.
                      Resource: repositoryArn(target, source, "*"),
                  },
              ]
            : []),
        { Sid: "GetRegistryToken", Action: token, Resource: "*" },
        ...(target === "ecr-private" ? KMS_STATEMENTS : []),
    ];
    return {
        Version: "2012-10-17",
        Statement: statement.map((s) => ({ Effect: "Allow", ...s })),
    };
}

const readJson = (file: string): any => JSON.parse(fs.readFileSync(`iam/${file}`, "utf8"));

/** The AWS stacks (stack files not `registry: local`), each with the stack it promotes from. */
const STACKS: [string, string | undefined][] = fs
    .readdirSync(".")
    .flatMap((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.slice(1) ?? [])
    .map((stack) => [stack, YAML.parse(fs.readFileSync(`Pulumi.${stack}.yaml`, "utf8")).config])
    .filter(([, config]) => config["model-registry:registry"] !== "local")
    .map(([stack, config]) => [stack, config["model-registry:promoteFrom"]]);

/** IAM's wildcard match of a Resource: `*` is any run of characters, `?` one character. */
const arnMatches = (pattern: string, arn: string) =>
    new RegExp(
        `^${pattern
            .replace(/[.+^${}()|[\]\\/]/g, "\\$&")
            .replace(/\*/g, ".*")
            .replace(/\?/g, ".")}$`,
    ).test(arn);

/** The program's source: every .ts file it is built from (not tests, the policy pack, tools). */
function programSource(dir = "."): string {
    return fs
        .readdirSync(dir, { withFileTypes: true })
        .filter((e) => !/^(node_modules|test|policy|scripts|bench|\..*)$/.test(e.name))
        .map((e) => path.join(dir, e.name))
        .map((p) =>
            fs.statSync(p).isDirectory()
                ? programSource(p)
                : /\.ts$/.test(p)
                  ? fs.readFileSync(p, "utf8")
                  : "",
        )
        .join("\n");
}

describe("the AWS calls of the program", () => {
    const source = programSource();

    it("are the table's: every resource and invoke it calls is listed, and nothing else", () => {
        const calls = new Set([...source.matchAll(/\baws\.(\w+)\.(\w+)/g)].map((m) => m[0]));
        expect([...calls].sort()).toEqual(Object.keys(AWS_CALLS).sort());
    });

    it("never change tag mutability: every repository is IMMUTABLE, so no PutImageTagMutability", () => {
        const mutability = [...source.matchAll(/imageTagMutability:\s*([^,\n]+)/g)].map(
            (m) => m[1],
        );
        expect(mutability).toEqual(['"IMMUTABLE"']);
        for (const [stack] of STACKS) {
            expect(
                readJson(`deployer-ecr-private-${stack}.json`).Statement.flatMap(
                    (s: any) => s.Action,
                ),
            ).not.toContain("ecr:PutImageTagMutability");
        }
    });

    it("include the lifecycle policy's create: PutLifecyclePolicy stays, on the own repository only", () => {
        expect(AWS_CALLS["aws.ecr.LifecyclePolicy"].actions).toContain("PutLifecyclePolicy");
        for (const [stack] of STACKS) {
            const granting = readJson(`deployer-ecr-private-${stack}.json`).Statement.filter(
                (s: any) => s.Action.includes("ecr:PutLifecyclePolicy"),
            );
            expect(granting.map((s: any) => s.Resource)).toEqual([
                repositoryArn("ecr-private", `model-registry-${stack}`),
            ]);
        }
    });
});

describe.each(STACKS)("the %s deployer", (stack, source) => {
    const own = `model-registry-${stack}`;
    const sourceName = source && `model-registry-${source}`;

    it("deploys a repository named model-registry-<stack>: no stack file renames it", () => {
        const config = YAML.parse(fs.readFileSync(`Pulumi.${stack}.yaml`, "utf8")).config;
        expect(config["model-registry:repositoryName"]).toBeUndefined();
        expect(YAML.parse(fs.readFileSync("Pulumi.yaml", "utf8")).name).toBe("model-registry");
    });

    it.each(["ecr-public", "ecr-private"] as const)(
        "%s: grants exactly what the program calls, on its own repository and its source",
        (target) => {
            const policy = readJson(`deployer-${target}-${stack}.json`);
            expect(policy).toEqual(expectedPolicy(target, own, sourceName));
        },
    );

    it.each(["ecr-public", "ecr-private"] as const)(
        "%s: holds nothing on another environment's repository but read on its source",
        (target) => {
            const policy = readJson(`deployer-${target}-${stack}.json`);
            for (const [other] of STACKS.filter(([s]) => s !== stack)) {
                const arn = repositoryArn(target, `model-registry-${other}`, "us-east-1");
                const reaching = policy.Statement.filter(
                    (s: any) =>
                        s.Resource !== "*" &&
                        arnMatches(s.Resource.replace("REGION", "us-east-1"), arn),
                );
                const actions = reaching.flatMap((s: any) => s.Action);
                expect([other, actions]).toEqual([other, other === source ? PULL[target] : []]);
            }
        },
    );
});

describe.each(["dev", "staging", "prod"])("the ecr-private %s deployer's key", (env) => {
    const statements = readJson(`deployer-ecr-private-${env}.json`).Statement.filter((s: any) =>
        [s.Action].flat().some((a: string) => a.startsWith("kms:")),
    );

    it("is used only through ECR in the stack's region, on the key KMS_KEY_ID alone", () => {
        expect(
            statements
                .map((s: any) => [s.Action].flat())
                .flat()
                .sort(),
        ).toEqual(["kms:CreateGrant", "kms:DescribeKey", "kms:RetireGrant"]);
        for (const s of statements) {
            expect(s.Resource).toBe("arn:aws:kms:REGION:ACCOUNT_ID:key/KMS_KEY_ID");
            expect(s.Condition.StringEquals).toEqual({
                "kms:ViaService": "ecr.REGION.amazonaws.com",
            });
        }
    });

    it("creates grants only for an AWS resource, and puts that key only where the request has it", () => {
        for (const s of statements) {
            const grant = [s.Action].flat().includes("kms:CreateGrant");
            expect(s.Condition.Bool).toEqual(
                grant ? { "kms:GrantIsForAWSResource": "true" } : undefined,
            );
            if (grant) expect([s.Action].flat()).toEqual(["kms:CreateGrant"]);
        }
    });
});

describe("the dev deployer", () => {
    it("holds nothing on prod's repository, in either target", () => {
        for (const target of ["ecr-public", "ecr-private"] as const) {
            const policy = readJson(`deployer-${target}-dev.json`);
            const prod = repositoryArn(target, "model-registry-prod", "us-east-1");
            const scoped = policy.Statement.filter((s: any) => s.Resource !== "*");
            expect(
                scoped.filter((s: any) =>
                    arnMatches(s.Resource.replace("REGION", "us-east-1"), prod),
                ),
            ).toEqual([]);
        }
    });
});

describe.each(["ecr-public", "ecr-private"] as const)("the %s pusher", (target) => {
    it("may push to the model repositories (what their repository policies allow) and get a token", () => {
        expect(readJson(`pusher-${target}.json`).Statement).toEqual([
            {
                Sid: "PushModelImages",
                Effect: "Allow",
                Action: PUSH.map((a) => qualify(target, a)),
                Resource: repositoryArn(target, "model-registry-*"),
            },
            {
                Sid: "GetRegistryToken",
                Effect: "Allow",
                Action: needed(target).token,
                Resource: "*",
            },
        ]);
    });
});

describe("the ARN match the tests use", () => {
    it("matches the way IAM does: * spans /, ? is one character, the rest is literal", () => {
        expect(
            arnMatches("arn:aws:ecr:*:1:repository/m-*", "arn:aws:ecr:r:1:repository/m-a/b"),
        ).toBe(true);
        expect(
            arnMatches("arn:aws:ecr:r:1:repository/m-?", "arn:aws:ecr:r:1:repository/m-ab"),
        ).toBe(false);
        expect(arnMatches("arn:aws:ecr:r:1:repository/m.x", "arn:aws:ecr:r:1:repository/m-x")).toBe(
            false,
        );
    });
});
