import * as pulumi from "@pulumi/pulumi";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { CONFIG_KEYS, RawConfig, StackConfig, loadConfig, readConfig } from "../config";
import { ConfigCommands, newStack, stackText } from "./support/program";
import { CliError, programConfig } from "./support/pulumiCli";
import { isSecret, valueOf } from "./support/pulumiMocks";

const ctx = { project: "model-registry", stack: "dev" };
const v = { modelVersion: "1.0.0" };

/**
 * The stack's config after `pulumi config set` of each key on a new stack (a list key's JSON text
 * as one `--path` item each, as a user sets lists), as `pulumi up` hands it to the program.
 */
function parse(raw: Raw, stack = "dev", opts: { skipValidation?: boolean } = {}): StackConfig {
    const commands: ConfigCommands = {};
    for (const [key, text] of Object.entries(raw)) {
        if (typeof text !== "string") {
            commands[key] = text;
            continue;
        }
        let items: unknown;
        try {
            items = JSON.parse(text);
        } catch {
            items = undefined;
        }
        const isList = CONFIG_KEYS[key as keyof typeof CONFIG_KEYS]?.kind === "array";
        commands[key] =
            isList && Array.isArray(items) && items.every((i) => typeof i === "string")
                ? items
                : text;
    }
    const cli = programConfig(newStack(commands), stack, opts);
    return readConfig(cli.config, (k) => cli.secretKeys.includes(k), { ...ctx, stack });
}

/** Config as a test gives it: text per key, or `{ secret }` for `pulumi config set --secret`. */
type Raw = RawConfig | Record<string, string | { secret: string }>;

/** The config of a stack file written by hand (lists in YAML), as `pulumi up` hands it over. */
function parseText(yaml: string): StackConfig {
    const cli = programConfig(stackText(yaml), "dev");
    return readConfig(cli.config, (k) => cli.secretKeys.includes(k), ctx);
}

/**
 * The message that stops the run: the CLI's, or the program's RunError. `skipValidation`: the
 * program's own check of a value the CLI refuses, reached with `--skip-config-validation`.
 */
function errorOf(raw: Raw, opts: { skipValidation?: boolean } = {}): string {
    try {
        parse(raw, "dev", opts);
    } catch (e) {
        expect(e instanceof CliError || pulumi.RunError.isInstance(e)).toBe(true);
        return (e as Error).message;
    }
    throw new Error("expected the run to stop");
}

/** The `Fix:` lines of a config error. */
function fixesOf(raw: Raw, opts: { skipValidation?: boolean } = {}): string[] {
    return errorOf(raw, opts)
        .split("\n")
        .filter((l) => l.startsWith("    Fix: "))
        .map((l) => l.slice("    Fix: ".length));
}

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
                    "    Fix: pulumi config set modelVersion <version>",
            );
        });

        // The rules and their suggestions are test/validation.test.ts's; here, what the message
        // makes of them: the key, the value as written, and a fix with the value meant or none.
        it.each([
            ["latest", "`latest` is a moving tag", "pulumi config set modelVersion <version>"],
            ["v1.0", 'without a leading "v"', "pulumi config set modelVersion 1.0.0"],
            ["1.2.3 ", "white space", "pulumi config set modelVersion 1.2.3"],
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
                "pulumi config set repositoryName my-model",
            ],
            [
                "catalog text over the AWS limit, the value shown shortened",
                { description: "d".repeat(1030) },
                `description = "${"d".repeat(77)}...": it is 1030 characters long; ECR Public allows at most 1024 (shorten it by 6 characters)`,
                "pulumi config set description <text>, or pulumi config rm description for the default (empty)",
            ],
            [
                "an unknown platform, with the platform meant",
                { platform: "x86_64" },
                'platform = "x86_64": it is not a known build platform',
                "pulumi config set platform linux/amd64",
            ],
            [
                "an unknown platform with none meant: no example platform, only a placeholder or the default",
                { platform: "linux/mips" },
                'platform = "linux/mips": it is not a known build platform; expected one of linux/amd64',
                "pulumi config set platform <os/arch>, or pulumi config rm platform for the default (linux/amd64)",
            ],
            [
                "forceDestroy on a protected stack",
                { forceDestroy: "true", protect: "true" },
                'forceDestroy = "true": protect is true for this stack, and a protected repository must not be destroyable with its images',
                "pulumi config set forceDestroy false",
            ],
            [
                "a model context that does not exist",
                { modelContext: "no-such-dir" },
                'modelContext = "no-such-dir": no directory',
                "pulumi config set modelContext <directory>, or pulumi config rm modelContext for the default (model)",
            ],
            [
                "an empty model context",
                { modelContext: "" },
                'modelContext = "": it is empty',
                "pulumi config set modelContext <directory>, or pulumi config rm modelContext for the default (model)",
            ],
            [
                "an absolute modelContext, which docker.Image would see change between machines",
                { modelContext: path.resolve("model") },
                `modelContext = ${JSON.stringify(path.resolve("model"))}: an absolute path differs from machine to machine`,
                "pulumi config set modelContext model",
            ],
            [
                "a Dockerfile that does not exist",
                { dockerfile: "Dockerfile.gpu" },
                'dockerfile = "Dockerfile.gpu": no file',
                "pulumi config set dockerfile <file>, or pulumi config rm dockerfile for the default (Dockerfile)",
            ],
            [
                "an absolute dockerfile, suggested relative to modelContext",
                { dockerfile: inside },
                `dockerfile = ${JSON.stringify(inside)}: an absolute path is read relative to modelContext`,
                "pulumi config set dockerfile Dockerfile",
            ],
            [
                "an absolute dockerfile outside modelContext",
                { dockerfile: path.resolve("Pulumi.yaml") },
                `dockerfile = ${JSON.stringify(path.resolve("Pulumi.yaml"))}: an absolute path is read relative to modelContext`,
                "pulumi config set dockerfile <file>, or pulumi config rm dockerfile for the default (Dockerfile)",
            ],
            [
                "a source URL that is not a URL",
                { sourceUrl: "github.com/x" },
                'sourceUrl = "github.com/x": expected an absolute URL',
                "pulumi config set sourceUrl https://github.com/x",
            ],
            [
                "a base image whose path has upper case",
                { baseImage: "Python:3.12" },
                'baseImage = "Python:3.12": the repository path "Python" has upper-case letters, and Docker refuses it',
                "pulumi config set baseImage python:3.12",
            ],
            [
                "an unknown registry target, with the spelling meant",
                { registry: "Local" },
                'registry = "Local": expected one of ecr-public, ecr-private, local',
                "pulumi config set registry local",
            ],
            [
                "an unknown registry target with none meant: the choices instead of an example",
                { registry: "gcr" },
                'registry = "gcr": expected one of ecr-public, ecr-private, local',
                "pulumi config set registry <ecr-public|ecr-private|local>, or pulumi config rm registry for the default (ecr-public)",
            ],
            [
                "a local registry image whose path has upper case",
                { registry: "local", localRegistryImage: "Registry:2" },
                'localRegistryImage = "Registry:2": the repository path "Registry" has upper-case letters',
                "pulumi config set localRegistryImage registry:2",
            ],
            [
                "a KMS key that is not a key ARN",
                { registry: "ecr-private", kmsKey: "alias/mine" },
                'kmsKey = "alias/mine": expected the ARN of a KMS key',
                "pulumi config set kmsKey <kms-key-arn>, or pulumi config rm kmsKey for the default (empty)",
            ],
            [
                "a push principal that is not an ARN, fixed by item path",
                { pushPrincipals: JSON.stringify([a, "account-123456789012"]) },
                'pushPrincipals (item 1) = "account-123456789012": it is not an IAM principal ARN',
                "pulumi config set --path 'pushPrincipals[1]' <principal-arn>",
            ],
            [
                "a principal outside the aws partition, on ECR Public",
                { pushPrincipals: '["arn:aws-cn:iam::123456789012:role/ci"]' },
                'pushPrincipals (item 0) = "arn:aws-cn:iam::123456789012:role/ci": it is a principal of the aws-cn partition, and ECR Public exists only in the aws partition',
                "pulumi config set --path 'pushPrincipals[0]' <principal-arn>",
            ],
            [
                "a repeated principal, naming the item and the one it repeats",
                { pushPrincipals: JSON.stringify([a, "arn:aws:iam::123456789012:root", a]) },
                `pushPrincipals (item 2) = "${a}": it repeats item 0; each principal is listed once.`,
                "pulumi config rm --path 'pushPrincipals[2]'",
            ],
            [
                "a bad list item, fixed by its own index",
                { operatingSystems: '["Linux",""]' },
                'operatingSystems (item 1) = "[\\"Linux\\",\\"\\"]": item "" is 0 characters long',
                "pulumi config set --path 'operatingSystems[1]' <badge>",
            ],
            [
                "a promoteFrom stack with no stack file here, naming the one meant",
                { promoteFrom: "stagign" },
                'promoteFrom = "stagign": this project has no stack "stagign" (no Pulumi.stagign.yaml here; its stacks: dev, local, prod, staging); did you mean staging?',
                "pulumi config set promoteFrom staging",
            ],
            [
                "a promoteFrom the promotion rules refuse",
                { promoteFrom: "public.ecr.aws/team/model:1.0.0" },
                'promoteFrom = "public.ecr.aws/team/model:1.0.0": ',
                "pulumi config set promoteFrom public.ecr.aws/team/model",
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
            // `pulumi config set --path 'pushPrincipals[1]' 123456789012` stores a number.
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
                "Fix: pulumi config set --path 'pushPrincipals[0]' arn:aws:iam::123456789012:root",
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
                "Fix: pulumi config rm pushPrincipals && pulumi config set --path 'pushPrincipals[0]' arn:aws:iam::123456789012:root",
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
            expect(msg).toContain("Fix: pulumi config set forceDestroy true");
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

describe("registry targets", () => {
    it("defaults to ecr-public and accepts each target", () => {
        expect(parse(v).registry).toBe("ecr-public");
        expect(parse({ ...v, registry: "ecr-private" }).registry).toBe("ecr-private");
        const local = parse({ ...v, registry: "local" });
        expect(local.registry).toBe("local");
        expect(local.localRegistry).toEqual({ image: "registry:2", port: 5000 });
        expect(local.registryUrl).toBeUndefined();
    });

    it.each([
        [
            // kmsKey set to its default is not a setting of another target.
            { registryUrl: "http://127.0.0.1:5000", kmsKey: "" },
            "registryUrl",
            "only read when registry is local (this stack's registry is ecr-public)",
        ],
        [
            { registry: "local", kmsKey: "arn:aws:kms:us-west-2:123456789012:key/abc" },
            "kmsKey",
            "only read when registry is ecr-private",
        ],
        [
            { registry: "local", pushPrincipals: '["arn:aws:iam::123456789012:root"]' },
            "pushPrincipals",
            "a local registry has no IAM principals",
        ],
    ] as [Raw, string, string][])(
        "refuses a setting of another target instead of ignoring it (%j): removed, not set to an example",
        (raw, key, reason) => {
            expect(errorOf({ ...v, ...raw })).toContain(`model-registry:${key}`);
            expect(errorOf({ ...v, ...raw })).toContain(reason);
            expect(fixesOf({ ...v, ...raw })).toEqual([`pulumi config rm ${key}`]);
        },
    );

    it("refuses gallery texts and badges on a registry without a gallery", () => {
        const message = errorOf({ ...v, registry: "local", description: "My model" });
        expect(message).toContain("model-registry:description");
        expect(message).toContain("ECR Public gallery");
        expect(message).toContain("Fix: pulumi config rm description");
        expect(errorOf({ ...v, registry: "ecr-private", operatingSystems: '["macOS"]' })).toContain(
            "model-registry:operatingSystems",
        );
        // Their defaults, which the CLI writes into every stack, are fine on every target, and
        // so is a value set to its default.
        expect(parse({ ...v, registry: "local" }).registry).toBe("local");
        expect(
            parse({ ...v, registry: "ecr-private", operatingSystems: '["Linux"]' }).registry,
        ).toBe("ecr-private");
    });

    it("takes principals of any partition on ecr-private", () => {
        const cn = '["arn:aws-cn:iam::123456789012:role/ci"]';
        expect(parse({ ...v, registry: "ecr-private", pushPrincipals: cn }).pushPrincipals).toEqual(
            ["arn:aws-cn:iam::123456789012:role/ci"],
        );
    });

    it("takes a registry URL with scheme, host and port only", () => {
        const local = { ...v, registry: "local" };
        expect(parse({ ...local, registryUrl: "http://127.0.0.1:5000/" }).registryUrl).toBe(
            "http://127.0.0.1:5000",
        );
        expect(errorOf({ ...local, registryUrl: "127.0.0.1:5000" })).toContain(
            "Fix: pulumi config set registryUrl http://127.0.0.1:5000",
        );
        expect(
            errorOf({ ...local, registryUrl: "https://u:p@registry.example:5000/v2" }),
        ).toContain("Fix: pulumi config set registryUrl https://registry.example:5000");
    });

    it("needs both credentials, and only for a registry the user runs", async () => {
        const url = { ...v, registry: "local", registryUrl: "http://127.0.0.1:5000" };
        const secret = { secret: "s3cret" };
        expect(errorOf({ ...url, registryUsername: "ci" })).toContain(
            "model-registry:registryPassword is not set: registryUsername is set",
        );
        expect(fixesOf({ ...url, registryUsername: "ci" })).toEqual([
            "pulumi config set --secret registryPassword <password>",
        ]);
        expect(errorOf({ ...url, registryPassword: secret })).toContain(
            "model-registry:registryUsername is not set",
        );
        expect(
            errorOf({ ...v, registry: "local", registryUsername: "ci", registryPassword: secret }),
        ).toContain("credentials are only for a registry you run yourself");
        const creds = parse({
            ...url,
            registryUsername: "ci",
            registryPassword: secret,
        }).registryCredentials!;
        expect(creds.username).toBe("ci");
        expect(await valueOf(creds.password)).toBe("s3cret");
        expect(await isSecret(creds.password)).toBe(true);
        // Set without --secret: refused, and not shown.
        const plain = errorOf({ ...url, registryUsername: "ci", registryPassword: "s3cret" });
        expect(plain).toContain(
            "model-registry:registryPassword is set in plain text: a password is kept only as a secret",
        );
        expect(plain).toMatch(/Fix: pulumi config set --secret registryPassword$/m);
        expect(plain).not.toContain("s3cret");
    });

    it("removes a password where none is read, and never shows it", () => {
        const message = errorOf({ ...v, registryPassword: { secret: "hunter2-password" } });
        expect(message).toContain("model-registry:registryPassword");
        expect(message).toContain("    Fix: pulumi config rm registryPassword");
        expect(message).not.toContain("hunter2");
    });

    it("checks the local registry's port, and takes a KMS key ARN", () => {
        const local = { ...v, registry: "local" };
        expect(parse({ ...local, localRegistryPort: "5055" }).localRegistry.port).toBe(5055);
        for (const port of ["0", "65536", "-1"]) {
            expect(errorOf({ ...local, localRegistryPort: port })).toContain(
                "expected a TCP port from 1 to 65535",
            );
        }
        expect(errorOf({ ...local, localRegistryPort: "50x" })).toBe(
            "Stack 'dev' with configuration key 'localRegistryPort' must be of type 'integer'",
        );
        const key = "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        expect(parse({ ...v, registry: "ecr-private", kmsKey: key }).kmsKey).toBe(key);
    });
});

describe("fixes are derived from the value, never a fixed example", () => {
    // The CLI refuses each of these first ("a boolean that is not a boolean", above).
    it.each([
        ["protect", "no", "false"],
        ["protect", "Yes", "true"],
        ["protect", "off", "false"],
        ["forceDestroy", "1", "true"],
        ["forceDestroy", "0", "false"],
        ["protect", "ON", "true"],
    ])("%s = %j suggests %s", (key, value, meant) => {
        expect(fixesOf({ ...v, [key]: value }, { skipValidation: true })).toEqual([
            `pulumi config set ${key} ${meant}`,
        ]);
    });

    it("a boolean with no meaning to derive gets no value: set one, or rm for the default", () => {
        expect(fixesOf({ ...v, protect: "maybe" }, { skipValidation: true })).toEqual([
            "pulumi config set protect <true|false>, or pulumi config rm protect for the default (false)",
        ]);
    });

    it("no Fix line of any bad input here carries an example value the input did not imply", () => {
        const inputs: RawConfig[] = [
            { modelVersion: "latest" },
            { modelVersion: "2.3.0-rc_1" },
            { ...v, protect: "no" },
            { ...v, platform: "linux/mips" },
            { ...v, modelContext: "no-such-dir" },
            { ...v, sourceUrl: "not a url" },
            { ...v, registry: "local", localRegistryPort: "99999" },
            { ...v, registry: "ecr-private", kmsKey: "alias/mine" },
        ];
        for (const raw of inputs) {
            for (const fix of fixesOf(raw)) {
                expect(fix).not.toMatch(
                    /modelVersion 1\.0\.0|protect true|platform linux\/amd64 |modelContext model$|example\.com|5000$|123456789012/,
                );
            }
        }
    });
});

describe("platform spellings", () => {
    it.each([
        ["linux/arm64/v8", "linux/arm64", "ARM 64"],
        ["linux/amd64/v1", "linux/amd64", "x86-64"],
        ["linux/arm", "linux/arm/v7", "ARM"],
    ])(
        "accepts %s, Docker's other spelling of %s, and uses the one spelling",
        (text, one, badge) => {
            const c = parse({ ...v, platform: text });
            expect(c.platform).toBe(one);
            expect(c.catalog.architectures).toEqual([badge]);
        },
    );

    it("gives docker.Image and the fingerprint the same platform for both spellings", async () => {
        const { modelBuildSpec } = await import("../lib/publication/buildSpec");
        const specOf = (platform: string) =>
            modelBuildSpec({ context: "model", version: "1.0.0", platform });
        const a = await specOf(parse({ ...v, platform: "linux/arm64/v8" }).platform);
        const b = await specOf(parse({ ...v, platform: "linux/arm64" }).platform);
        expect(a.platform).toBe("linux/arm64");
        expect(a.fingerprint).toBe(b.fingerprint);
        // The components' own check refuses the other spelling with the one to use, so a
        // program that bypasses the config loader cannot fingerprint the same build twice.
        const { checkImageArgs } = await import("../components/registry");
        expect(() => checkImageArgs("1.0.0", "linux/arm64/v8")).toThrow(
            "it is linux/arm64 written another way; write it linux/arm64",
        );
    });
});

describe("misspelt and unknown keys", () => {
    /** The run's error after `pulumi config set` of each of `keys` (full names) to 1.2.0. */
    const parseKeys = (raw: RawConfig, keys: string[], opts: { skipValidation?: boolean } = {}) =>
        errorOf({ ...raw, ...Object.fromEntries(keys.map((k) => [k, "1.2.0"])) }, opts);

    it("names the misspelt key, the key meant, and moves the value", () => {
        // The CLI stops first: modelVersion is required. Without its checks, the program names the key.
        expect(parseKeys({}, ["model-registry:modelversion", "aws:region"])).toBe(
            "Stack 'dev' is missing configuration value 'modelVersion'",
        );
        const msg = parseKeys({}, ["model-registry:modelversion", "aws:region"], {
            skipValidation: true,
        });
        expect(msg).toBe(
            'Invalid configuration for stack "dev" (1 problem); nothing was created or pushed.\n' +
                "  - model-registry:modelversion is set: this program reads no such key (keys are case-sensitive), so the value is ignored and modelVersion is not set; did you mean modelVersion?\n" +
                '    Fix: pulumi config set modelVersion "$(pulumi config get modelversion)" && pulumi config rm modelversion',
        );
    });

    it.each([
        ["modelVerison", "modelVersion"],
        ["model_version", "modelVersion"],
        ["ModelContext", "modelContext"],
        ["pushPrincipal", "pushPrincipals"],
        ["forcedestroy", "forceDestroy"],
    ])("%s: did you mean %s?", (typo, meant) => {
        const msg = parseKeys({ modelVersion: "1.0.0" }, [`model-registry:${typo}`]);
        expect(msg).toContain(`model-registry:${typo} is set: `);
        expect(msg).toContain(`did you mean ${meant}?`);
    });

    it("a misspelling of a key that is also set offers the move (it may be the new value), or its removal", () => {
        const msg = parseKeys({ modelVersion: "1.0.0" }, ["model-registry:modelVerison"]);
        expect(msg).toContain(
            "did you mean modelVersion? modelVersion is set too: if this value is the one you want, move it there (below); to keep modelVersion as it is, pulumi config rm modelVerison.",
        );
        expect(msg).toContain(
            '    Fix: pulumi config set modelVersion "$(pulumi config get modelVerison)" && pulumi config rm modelVerison',
        );
        expect(msg).toContain("(1 problem)");
    });

    it("a misspelt secret is moved as a secret, and its value never shown", () => {
        const msg = parseKeys({ modelVersion: "1.0.0", registry: "local" }, [
            "model-registry:registrypassword",
        ]);
        expect(msg).toContain(
            'Fix: pulumi config set --secret registryPassword "$(pulumi config get registrypassword)" && pulumi config rm registrypassword',
        );
    });

    it("a key close to nothing is removed; other namespaces are not this program's", () => {
        const msg = parseKeys({ modelVersion: "1.0.0" }, [
            "model-registry:colour",
            "aws:region",
            "docker:host",
            "other-project:modelversion",
        ]);
        expect(msg).toContain("model-registry:colour is set: this program reads no such key");
        expect(msg).toContain("    Fix: pulumi config rm colour");
        expect(msg).toContain("(1 problem)");
        expect(msg).not.toContain("aws:region");
        expect(msg).not.toContain("other-project");
    });

    it("declared keys, set or defaulted, are not reported", () => {
        // The CLI passes every declared key: the set one and the defaulted ones.
        const cli = programConfig(newStack({ modelVersion: "1.0.0" }), "dev");
        expect(Object.keys(cli.config).sort()).toEqual(
            Object.keys(CONFIG_KEYS)
                .map((k) => `model-registry:${k}`)
                .sort(),
        );
        expect(parse({ modelVersion: "1.0.0" }).modelVersion).toBe("1.0.0");
    });

    it("loadConfig reads the set keys from the engine's config", async () => {
        await pulumi.runtime.setMocks(
            {
                newResource: (a) => ({ id: `${a.name}-id`, state: a.inputs }),
                call: () => {
                    throw new Error("mock not implemented");
                },
            },
            "model-registry",
            "dev",
        );
        const typo = programConfig(
            newStack({ modelVersion: "1.0.0", modelversion: "1.2.0", "aws:region": "us-west-2" }),
            "dev",
        );
        pulumi.runtime.setAllConfig(typo.config, typo.secretKeys);
        expect(() => loadConfig()).toThrow("did you mean modelVersion?");
        const fixed = programConfig(newStack({ modelVersion: "1.2.0" }), "dev");
        pulumi.runtime.setAllConfig(fixed.config, fixed.secretKeys);
        expect(loadConfig().modelVersion).toBe("1.2.0");
        pulumi.runtime.setAllConfig({});
    });
});

describe("what must stay on this machine or in the project", () => {
    it("takes plain http:// only for a registry on this machine", () => {
        const local = { ...v, registry: "local" };
        for (const url of ["http://127.0.0.1:5000", "http://localhost:5000", "http://[::1]:5000"]) {
            expect(parse({ ...local, registryUrl: url }).registryUrl).toBe(url);
        }
        const message = errorOf({
            ...local,
            registryUrl: "http://registry.lan:5000",
            registryUsername: "ci",
            registryPassword: { secret: "pw" },
        });
        expect(message).toContain(
            'model-registry:registryUrl = "http://registry.lan:5000": plain http:// is only for a registry on this machine',
        );
        expect(message).toContain("Fix: pulumi config set registryUrl https://registry.lan:5000");
    });

    it("refuses a build context or Dockerfile outside the project, symlinks resolved", () => {
        expect(errorOf({ ...v, modelContext: ".." })).toContain(
            'model-registry:modelContext = "..": it resolves to',
        );
        expect(errorOf({ ...v, modelContext: ".." })).toContain("outside the project");
        const link = `.test-link-${process.pid}`;
        fs.symlinkSync(os.tmpdir(), link);
        try {
            expect(errorOf({ ...v, modelContext: link })).toContain(
                `model-registry:modelContext = "${link}": it resolves to ${JSON.stringify(fs.realpathSync(os.tmpdir()))}, outside the project`,
            );
            fs.rmSync(link);
            fs.symlinkSync(path.resolve("model/Dockerfile"), link);
            // A link inside the project to a file inside it is fine.
            expect(parse({ ...v, dockerfile: `../${link}` }).dockerfile).toBe(`../${link}`);
        } finally {
            fs.rmSync(link, { force: true });
        }
        expect(errorOf({ ...v, dockerfile: "../../Dockerfile" })).toContain(
            "model-registry:dockerfile",
        );
    });
});

describe("acknowledgedTampering", () => {
    const v = { modelVersion: "1.1.0" };
    const digest = `sha256:${"2".repeat(64)}`;

    it("takes each version once, with the digest the registry holds now, absent, or the claim it releases", () => {
        expect(
            parse({
                ...v,
                acknowledgedTampering: JSON.stringify([
                    `1.0.0=${digest}`,
                    "0.9.0=absent",
                    "0.8.0=unclaim:0123456789ab",
                ]),
            }).acknowledgedTampering,
        ).toEqual({ "1.0.0": digest, "0.9.0": "absent", "0.8.0": "unclaim:0123456789ab" });
    });

    it.each([
        "1.0.0=deleted",
        "1.0.0=unclaim:",
        "1.0.0=unclaim:0123456789a",
        "1.0.0=unclaim:0123456789abc",
        "1.0.0=unclaim:0123456789AB",
    ])("refuses %s: not <version>=<digest|absent|unclaim:12 hex>", (item) => {
        expect(errorOf({ ...v, acknowledgedTampering: JSON.stringify([item]) })).toContain(
            `model-registry:acknowledgedTampering (item 0) = "${item}": expected <version>=<digest>`,
        );
    });

    it.each([
        [`1.0.0=${digest}`, "1.0.0=absent"],
        ["1.0.0=absent", "1.0.0=unclaim:0123456789ab"],
    ])("refuses a version twice: %s, %s", (first, again) => {
        const twice = errorOf({ ...v, acknowledgedTampering: JSON.stringify([first, again]) });
        expect(twice).toContain("1.0.0 is acknowledged in an earlier item too");
        expect(twice).toContain("Fix: pulumi config rm --path 'acknowledgedTampering[1]'");
    });
});

describe("small message fixes", () => {
    it("says a file given as modelContext is a file, and for a Dockerfile suggests its directory", () => {
        const msg = errorOf({ ...v, modelContext: "model/Dockerfile" });
        expect(msg).toContain(
            `model-registry:modelContext = "model/Dockerfile": ${JSON.stringify(path.resolve("model/Dockerfile"))} is a file, not a directory`,
        );
        expect(msg.endsWith("Fix: pulumi config set modelContext model")).toBe(true);
        const other = errorOf({ ...v, modelContext: "package.json" });
        expect(other).toContain("is a file, not a directory");
        expect(other).not.toContain("looks like a Dockerfile");
    });

    it("a Dockerfile of another name as modelContext: its directory and its name", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ctx-"));
        try {
            fs.writeFileSync(path.join(dir, "Dockerfile.gpu"), "FROM scratch\n");
            const rel = path.relative(process.cwd(), path.join(dir, "Dockerfile.gpu"));
            const msg = errorOf({ ...v, modelContext: rel });
            expect(msg).toContain(
                `    Fix: pulumi config set modelContext ${path.dirname(rel)} && pulumi config set dockerfile Dockerfile.gpu`,
            );
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    it("honours an explicit empty operatingSystems list (no badge)", () => {
        // No `pulumi config set` makes an empty list: the stack file says `[]`.
        expect(
            parseText(
                "config:\n  model-registry:modelVersion: 1.0.0\n  model-registry:operatingSystems: []\n",
            ).catalog.operatingSystems,
        ).toEqual([]);
        expect(parse(v).catalog.operatingSystems).toEqual(["Linux"]);
        // architectures' default is the empty list, so empty keeps deriving it from the platform.
        expect(parse({ ...v, architectures: "[]" }).catalog.architectures).toEqual(["x86-64"]);
    });
});

describe("secrets and credentials never reach a message", () => {
    it.each([
        // On a stack whose registry is not local: refused as another target's setting.
        [{ registryUrl: "http://admin:S3cretPass@reg.example:5000" }, "S3cretPass"],
        // A password with @ or / in it, and one without a scheme.
        [{ registry: "local", registryUrl: "http://admin:p@ss@reg.example:5000/v2" }, "p@ss"],
        [{ registry: "local", registryUrl: "http://admin:pa/ss@reg.example:5000/v2" }, "pa/ss"],
        [{ registry: "local", registryUrl: "admin:secretpw@reg.example:5000" }, "secretpw"],
        // White space in the password, which a URL cannot hold but a typo can.
        [{ registry: "local", registryUrl: "http://user:my secret pw@10.0.0.5:5000" }, "secret pw"],
        [{ registry: "local", registryUrl: "http://user:tab\tpw@10.0.0.5:5000" }, "pw"],
    ])("masks credentials typed into registryUrl (%j)", (raw, secret) => {
        const message = errorOf({ ...v, ...raw });
        expect(message).toContain("model-registry:registryUrl");
        expect(message).toContain("***@");
        expect(message).not.toContain(secret);
    });

    it("shows the URL with its credentials masked, where they were", () => {
        const message = errorOf({
            ...v,
            registry: "local",
            registryUrl: "http://alice:hunter2@registry.example:5000",
        });
        expect(message).toContain('registryUrl = "http://***@registry.example:5000"');
        expect(message).not.toContain("hunter2");
    });

    it("refuses a sourceUrl with a token, which would become a public image label", () => {
        const message = errorOf({
            ...v,
            sourceUrl: "https://gitlab-ci-token:glcbt-SECRET@gitlab.example.com/g/p.git",
        });
        expect(message).toContain("model-registry:sourceUrl");
        expect(message).toContain("org.opencontainers.image.source label");
        expect(message).toContain(
            "Fix: pulumi config set sourceUrl https://gitlab.example.com/g/p.git",
        );
        expect(message).not.toContain("glcbt-SECRET");
        // Without credentials it is taken as it is.
        expect(
            parse({ modelVersion: "1.0.0", sourceUrl: "https://gitlab.example.com/g/p.git" })
                .sourceUrl,
        ).toBe("https://gitlab.example.com/g/p.git");
    });

    it("never shows a value set with --secret, nor a fix derived from it", () => {
        const message = errorOf({
            ...v,
            registry: "local",
            registryUrl: { secret: "reg.example.internal:5000" },
        });
        expect(message).toContain("model-registry:registryUrl is set (a secret):");
        expect(message).not.toContain("reg.example.internal");
    });

    it("reads which keys are secret from the engine, as pulumi up passes them", async () => {
        jest.resetModules();
        const sdk: typeof pulumi = await import("@pulumi/pulumi");
        await sdk.runtime.setMocks(
            { newResource: () => ({ id: "x", state: {} }), call: () => ({}) },
            "model-registry",
            "dev",
            false,
        );
        const cli = programConfig(
            newStack({
                modelVersion: "1.0.0",
                sourceUrl: { secret: "not a url with a private host secret.example" },
            }),
            "dev",
        );
        expect(cli.secretKeys).toEqual(["model-registry:sourceUrl"]);
        sdk.runtime.setAllConfig(cli.config, cli.secretKeys);
        const { loadConfig } = await import("../config");
        let message = "";
        try {
            loadConfig();
        } catch (e) {
            message = (e as Error).message;
        }
        expect(message).toContain("model-registry:sourceUrl is set (a secret):");
        expect(message).not.toContain("secret.example");
    });

    it("a misspelt list key: read its items before it is removed", () => {
        const message = errorOf({ modelVersion: "1.0.0", pushPrincipal: "x" });
        const fix = message.split("Fix: ")[1] ?? "";
        expect(fix.indexOf("pulumi config get pushPrincipal")).toBeGreaterThanOrEqual(0);
        expect(fix.indexOf("pulumi config get pushPrincipal")).toBeLessThan(
            fix.indexOf("pulumi config rm pushPrincipal"),
        );
    });

    it("reports keys named like Object's own properties as unknown", () => {
        const message = errorOf({ modelVersion: "1.0.0", constructor: "x" });
        expect(message).toContain(
            "model-registry:constructor is set: this program reads no such key",
        );
    });
});
