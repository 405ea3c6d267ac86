import * as path from "path";
import { Raw, errorOf, fixesOf, parse, parseText, v } from "./support/config";

describe("parseConfig", () => {
    it("applies every default", () => {
        expect(parse({ modelVersion: "1.0.0" })).toEqual({
            modelVersion: "1.0.0",
            repositoryName: "model-registry-dev",
            modelContext: "model",
            dockerfile: "Dockerfile",
            platform: "linux/amd64",
            baseImage: "",
            catalog: {
                description: "",
                aboutText: "",
                usageText: "",
                architectures: ["x86-64"],
                operatingSystems: ["Linux"],
            },
            forceDestroy: false,
            protect: false,
            pushPrincipals: [],
            sourceUrl: "",
            modelRevision: "",
            promoteFrom: undefined,
            registry: "ecr-public",
            registryUrl: undefined,
            registryCredentials: undefined,
            localRegistry: { image: "registry:2", port: 5000 },
            kmsKey: undefined,
            acknowledgedTampering: {},
        });
    });

    it("derives the repository name from project and stack", () => {
        expect(parse({ modelVersion: "1.0.0" }, "Prod_EU").repositoryName).toBe(
            "model-registry-prod-eu",
        );
    });

    it("derives the architecture badge from the platform", () => {
        expect(
            parse({ modelVersion: "1.0.0", platform: "linux/arm64" }).catalog.architectures,
        ).toEqual(["ARM 64"]);
    });

    it("reads lists and booleans as the engine passes them", () => {
        const c = parse({
            modelVersion: "1.1.0",
            pushPrincipals: '["arn:aws:iam::123456789012:role/ci"]',
            operatingSystems: '["Linux"]',
            architectures: '["x86-64","ARM 64"]',
            forceDestroy: "true",
        });
        expect(c.pushPrincipals).toEqual(["arn:aws:iam::123456789012:role/ci"]);
        expect(c.catalog.architectures).toEqual(["x86-64", "ARM 64"]);
        expect(c.forceDestroy).toBe(true);
    });

    describe("bad input: one message naming key, value and fix", () => {
        it("missing modelVersion: the CLI stops first; the program says so too when run without the CLI's checks", () => {
            expect(errorOf({})).toBe("Stack 'dev' is missing configuration value 'modelVersion'");
            expect(errorOf({}, { skipValidation: true })).toBe(
                'Invalid configuration for stack "dev" (1 problem); nothing was created or pushed.\n' +
                    "  - model-registry:modelVersion is not set: every stack publishes exactly one model version, so it must be set explicitly (a SemVer version such as 1.0.0).\n" +
                    "    Fix: pulumi config set --stack dev modelVersion <version>",
            );
        });

        // The rules and their suggestions are test/validation.test.ts's; here, what the message
        // makes of them: the key, the value as written, and a fix with the value meant or none.
        it.each([
            [
                "latest",
                "`latest` is a moving tag",
                "pulumi config set --stack dev modelVersion <version>",
            ],
            ["v1.0", 'without a leading "v"', "pulumi config set --stack dev modelVersion 1.0.0"],
            ["1.2.3 ", "white space", "pulumi config set --stack dev modelVersion 1.2.3"],
        ])("modelVersion %j", (value, reason, fix) => {
            const msg = errorOf({ modelVersion: value });
            expect(msg).toContain(`model-registry:modelVersion = ${JSON.stringify(value)}: `);
            expect(msg).toContain(reason);
            expect(msg).toContain(`Fix: ${fix}`);
        });

        const a = "arn:aws:iam::123456789012:role/ci";
        const inside = path.resolve("model", "Dockerfile");
        it.each([
            [
                "an upper-case repository name",
                { repositoryName: "My-Model" },
                `repositoryName = "My-Model": it has 2 upper-case letters (the first, 'M', at position 1)`,
                "pulumi config set --stack dev repositoryName my-model",
            ],
            [
                "catalog text over the AWS limit, the value shown shortened",
                { description: "d".repeat(1030) },
                `description = "${"d".repeat(77)}...": it is 1030 characters long; ECR Public allows at most 1024 (shorten it by 6 characters)`,
                "pulumi config set --stack dev description <text>, or pulumi config rm --stack dev description for the default (empty)",
            ],
            [
                "an unknown platform, with the platform meant",
                { platform: "x86_64" },
                'platform = "x86_64": it is not a known build platform',
                "pulumi config set --stack dev platform linux/amd64",
            ],
            [
                "an unknown platform with none meant: no example platform, only a placeholder or the default",
                { platform: "linux/mips" },
                'platform = "linux/mips": it is not a known build platform; expected one of linux/amd64',
                "pulumi config set --stack dev platform <os/arch>, or pulumi config rm --stack dev platform for the default (linux/amd64)",
            ],
            [
                "forceDestroy on a protected stack",
                { forceDestroy: "true", protect: "true" },
                'forceDestroy = "true": protect is true for this stack, and a protected repository must not be destroyable with its images',
                "pulumi config set --stack dev forceDestroy false",
            ],
            [
                "a model context that does not exist",
                { modelContext: "no-such-dir" },
                'modelContext = "no-such-dir": no directory',
                "pulumi config set --stack dev modelContext <directory>, or pulumi config rm --stack dev modelContext for the default (model)",
            ],
            [
                "an empty model context",
                { modelContext: "" },
                'modelContext = "": it is empty',
                "pulumi config set --stack dev modelContext <directory>, or pulumi config rm --stack dev modelContext for the default (model)",
            ],
            [
                "an absolute modelContext, which docker.Image would see change between machines",
                { modelContext: path.resolve("model") },
                `modelContext = ${JSON.stringify(path.resolve("model"))}: an absolute path differs from machine to machine`,
                "pulumi config set --stack dev modelContext model",
            ],
            [
                "a Dockerfile that does not exist",
                { dockerfile: "Dockerfile.gpu" },
                'dockerfile = "Dockerfile.gpu": no file',
                "pulumi config set --stack dev dockerfile <file>, or pulumi config rm --stack dev dockerfile for the default (Dockerfile)",
            ],
            [
                "an absolute dockerfile, suggested relative to modelContext",
                { dockerfile: inside },
                `dockerfile = ${JSON.stringify(inside)}: an absolute path is read relative to modelContext`,
                "pulumi config set --stack dev dockerfile Dockerfile",
            ],
            [
                "an absolute dockerfile outside modelContext",
                { dockerfile: path.resolve("Pulumi.yaml") },
                `dockerfile = ${JSON.stringify(path.resolve("Pulumi.yaml"))}: an absolute path is read relative to modelContext`,
                "pulumi config set --stack dev dockerfile <file>, or pulumi config rm --stack dev dockerfile for the default (Dockerfile)",
            ],
            [
                "a source URL that is not a URL",
                { sourceUrl: "github.com/x" },
                'sourceUrl = "github.com/x": expected an absolute URL',
                "pulumi config set --stack dev sourceUrl https://github.com/x",
            ],
            [
                "a base image whose path has upper case",
                { baseImage: "Python:3.12" },
                'baseImage = "Python:3.12": the repository path "Python" has upper-case letters, and Docker refuses it',
                "pulumi config set --stack dev baseImage python:3.12",
            ],
            [
                "an unknown registry target, with the spelling meant",
                { registry: "Local" },
                'registry = "Local": expected one of ecr-public, ecr-private, local',
                "pulumi config set --stack dev registry local",
            ],
            [
                "an unknown registry target with none meant: the choices instead of an example",
                { registry: "gcr" },
                'registry = "gcr": expected one of ecr-public, ecr-private, local',
                "pulumi config set --stack dev registry <ecr-public|ecr-private|local>, or pulumi config rm --stack dev registry for the default (ecr-public)",
            ],
            [
                "a local registry image whose path has upper case",
                { registry: "local", localRegistryImage: "Registry:2" },
                'localRegistryImage = "Registry:2": the repository path "Registry" has upper-case letters',
                "pulumi config set --stack dev localRegistryImage registry:2",
            ],
            [
                "a KMS key that is not a key ARN",
                { registry: "ecr-private", kmsKey: "alias/mine" },
                'kmsKey = "alias/mine": expected the ARN of a KMS key',
                "pulumi config set --stack dev kmsKey <kms-key-arn>, or pulumi config rm --stack dev kmsKey for the default (empty)",
            ],
            [
                "a push principal that is not an ARN, fixed by item path",
                { pushPrincipals: JSON.stringify([a, "account-123456789012"]) },
                'pushPrincipals (item 1) = "account-123456789012": it is not an IAM principal ARN',
                "pulumi config set --stack dev --path 'pushPrincipals[1]' <principal-arn>",
            ],
            [
                "a principal outside the aws partition, on ECR Public",
                { pushPrincipals: '["arn:aws-cn:iam::123456789012:role/ci"]' },
                'pushPrincipals (item 0) = "arn:aws-cn:iam::123456789012:role/ci": it is a principal of the aws-cn partition, and ECR Public exists only in the aws partition',
                "pulumi config set --stack dev --path 'pushPrincipals[0]' <principal-arn>",
            ],
            [
                "a repeated principal, naming the item and the one it repeats",
                { pushPrincipals: JSON.stringify([a, "arn:aws:iam::123456789012:root", a]) },
                `pushPrincipals (item 2) = "${a}": it repeats item 0; each principal is listed once.`,
                "pulumi config rm --stack dev --path 'pushPrincipals[2]'",
            ],
            [
                "a bad list item, fixed by its own index",
                { operatingSystems: '["Linux",""]' },
                'operatingSystems (item 1) = "[\\"Linux\\",\\"\\"]": item 1 is 0 characters long',
                "pulumi config set --stack dev --path 'operatingSystems[1]' <badge>",
            ],
            [
                "a promoteFrom stack with no stack file here, naming the one meant",
                { promoteFrom: "stagign" },
                'promoteFrom = "stagign": this project has no stack "stagign" (no Pulumi.stagign.yaml here; its stacks: dev, local, prod, staging); did you mean staging?',
                "pulumi config set --stack dev promoteFrom staging",
            ],
            [
                "a promoteFrom the promotion rules refuse",
                { promoteFrom: "public.ecr.aws/team/model:1.0.0" },
                'promoteFrom = "public.ecr.aws/team/model:1.0.0": ',
                "pulumi config set --stack dev promoteFrom public.ecr.aws/team/model",
            ],
        ] as [string, Raw, string, string][])("%s", (_name, raw, line, fix) => {
            expect(errorOf({ ...v, ...raw })).toContain(`  - model-registry:${line}`);
            expect(fixesOf({ ...v, ...raw })).toEqual([fix]);
        });

        it("usage and about text over the AWS limit", () => {
            const msg = errorOf({
                modelVersion: "1.0.0",
                usageText: "u".repeat(25601),
                aboutText: "a".repeat(25601),
            });
            expect(msg).toContain("(2 problems)");
            expect(msg).toContain("model-registry:aboutText");
            expect(msg).toContain("model-registry:usageText");
        });

        it("too many architecture badges", () => {
            const msg = errorOf({
                modelVersion: "1.0.0",
                architectures: JSON.stringify(Array(51).fill("x86-64")),
            });
            expect(msg).toContain("model-registry:architectures");
            expect(msg).toContain("51 items; ECR Public allows at most 50");
        });

        it("an account ID as a list item: the CLI refuses the number --path stores; as a YAML string, its root is suggested", () => {
            // `pulumi config set --stack dev --path 'pushPrincipals[1]' 123456789012` stores a number.
            expect(
                errorOf({ modelVersion: "1.0.0", pushPrincipals: '["123456789012"]' }),
            ).toContain("must be of type 'array<string>'");
            let hand = "";
            try {
                parseText(
                    'config:\n  model-registry:modelVersion: 1.0.0\n  model-registry:pushPrincipals: ["123456789012"]\n',
                );
            } catch (e) {
                hand = (e as Error).message;
            }
            expect(hand).toContain(
                "Fix: pulumi config set --stack dev --path 'pushPrincipals[0]' arn:aws:iam::123456789012:root",
            );
        });

        it("a list that is not a list: the CLI refuses it; the program's fix sets the list of that value", () => {
            const raw = { modelVersion: "1.0.0", pushPrincipals: "arn:aws:iam::123456789012:root" };
            expect(errorOf(raw)).toBe(
                "Stack 'dev' with configuration key 'pushPrincipals' must be of type 'array<string>'",
            );
            const msg = errorOf(raw, { skipValidation: true });
            expect(msg).toContain("expected a list of strings");
            expect(msg).toContain(
                "Fix: pulumi config rm --stack dev pushPrincipals && pulumi config set --stack dev --path 'pushPrincipals[0]' arn:aws:iam::123456789012:root",
            );
        });

        it("a boolean that is not a boolean", () => {
            expect(errorOf({ modelVersion: "1.0.0", forceDestroy: "yes" })).toBe(
                "Stack 'dev' with configuration key 'forceDestroy' must be of type 'boolean'",
            );
            const msg = errorOf(
                { modelVersion: "1.0.0", forceDestroy: "yes" },
                { skipValidation: true },
            );
            expect(msg).toContain('model-registry:forceDestroy = "yes": expected true or false');
            expect(msg).toContain("Fix: pulumi config set --stack dev forceDestroy true");
        });

        it("lists every problem at once", () => {
            const msg = errorOf({
                modelVersion: "latest",
                repositoryName: "Bad Name",
                platform: "sparc",
            });
            expect(msg).toMatch(
                /^Invalid configuration for stack "dev" \(3 problems\); nothing was created or pushed\./,
            );
            expect(msg.split("\n").filter((l) => l.startsWith("    Fix: "))).toHaveLength(3);
        });
    });
});
