import * as pulumi from "@pulumi/pulumi";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { CONFIG_KEYS, RawConfig, loadConfig } from "../config";
import { newStack } from "./support/program";
import { programConfig } from "./support/pulumiCli";
import { errorOf, fixesOf, parse, parseText, v } from "./support/config";

const fixesOfMessage = (msg: string) =>
    msg
        .split("\n")
        .filter((l) => l.startsWith("    Fix: "))
        .map((l) => l.slice("    Fix: ".length));

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
            `pulumi config set --stack dev ${key} ${meant}`,
        ]);
    });

    it("a boolean with no meaning to derive gets no value: set one, or rm for the default", () => {
        expect(fixesOf({ ...v, protect: "maybe" }, { skipValidation: true })).toEqual([
            "pulumi config set --stack dev protect <true|false>, or pulumi config rm --stack dev protect for the default (false)",
        ]);
    });

    it("no Fix line of any bad input here carries an example value the input did not imply", () => {
        // protect is typed boolean: the CLI refuses "no" first, so the program's own message is
        // reached with --skip-config-validation.
        const inputs: [RawConfig, { skipValidation?: boolean }?][] = [
            [{ modelVersion: "latest" }],
            [{ modelVersion: "2.3.0-rc_1" }],
            [{ ...v, protect: "no" }, { skipValidation: true }],
            [{ ...v, platform: "linux/mips" }],
            [{ ...v, modelContext: "no-such-dir" }],
            [{ ...v, sourceUrl: "not a url" }],
            [{ ...v, registry: "local", localRegistryPort: "99999" }],
            [{ ...v, registry: "ecr-private", kmsKey: "alias/mine" }],
        ];
        for (const [raw, opts] of inputs) {
            const fixes = fixesOf(raw, opts);
            expect(fixes.length).toBeGreaterThan(0);
            for (const fix of fixes) {
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
    /** The run's error after `pulumi config set --stack dev` of each of `keys` (full names) to 1.2.0. */
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
                '    Fix: pulumi config set --stack dev modelVersion -- "$(pulumi config get --stack dev modelversion)" && pulumi config rm --stack dev modelversion',
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
            "did you mean modelVersion? modelVersion is set too: if this value is the one you want, move it there (below); to keep modelVersion as it is, remove this one instead (pulumi config rm --stack dev modelVerison).",
        );
        expect(msg).toContain(
            '    Fix: pulumi config set --stack dev modelVersion -- "$(pulumi config get --stack dev modelVerison)" && pulumi config rm --stack dev modelVerison',
        );
        expect(msg).toContain("(1 problem)");
    });

    it("a misspelt secret is moved as a secret, and its value never shown", () => {
        const msg = parseKeys({ modelVersion: "1.0.0", registry: "local" }, [
            "model-registry:registrypassword",
        ]);
        expect(msg).toContain(
            'Fix: pulumi config set --stack dev --secret registryPassword -- "$(pulumi config get --stack dev registrypassword)" && pulumi config rm --stack dev registrypassword',
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
        expect(msg).toContain("    Fix: pulumi config rm --stack dev colour");
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
        expect(twice).toContain(
            "Fix: pulumi config rm --stack dev --path 'acknowledgedTampering[1]'",
        );
    });

    it("numbers each fix as the list is once the fixes above it have run", () => {
        const list = ["1.0.0=absent", "1.0.0=absent", "junk", "2.0.0=absent", "2.0.0=absent"];
        expect(fixesOf({ ...v, acknowledgedTampering: JSON.stringify(list) })).toEqual([
            "pulumi config rm --stack dev --path 'acknowledgedTampering[1]'",
            "pulumi config set --stack dev --path 'acknowledgedTampering[1]' <version>=<sha256:digest|absent|unclaim:hex>",
            "pulumi config rm --stack dev --path 'acknowledgedTampering[3]'",
        ]);
    });
});

describe("small message fixes", () => {
    it("every command names the stack whose config is wrong, not the one selected", () => {
        let msg = "";
        try {
            parse({ ...v, platform: "x86_64", modelRevision: " r " }, "prod");
        } catch (e) {
            msg = (e as Error).message;
        }
        expect(msg).toContain('Invalid configuration for stack "prod"');
        expect(fixesOfMessage(msg)).toEqual([
            "pulumi config set --stack prod platform linux/amd64",
            "pulumi config set --stack prod modelRevision r",
        ]);
    });

    it("never suggests promoting from the stack itself", () => {
        let msg = "";
        try {
            parse({ ...v, promoteFrom: "prdo" }, "prod");
        } catch (e) {
            msg = (e as Error).message;
        }
        expect(msg).toContain('this project has no stack "prdo"');
        expect(msg).not.toContain("did you mean prod");
    });

    it("names the stack only in commands, never inside a quoted value", () => {
        const fix = fixesOf(
            { ...v, architectures: "x: pulumi config get y" },
            { skipValidation: true },
        );
        expect(fix[0]).toMatch(/'x: pulumi config get y'$/);
    });

    it("names the stack only in commands, never inside a value", () => {
        const item = `pulumi config set-all ${"x".repeat(40)}`;
        const msg = errorOf({ ...v, architectures: JSON.stringify([item]) });
        expect(msg).toContain("item 0 is 62 characters long");
        expect(msg).toContain("pulumi config set-all xxx");
        expect(msg).not.toContain("--stack dev set-all");
    });

    it("an image pinned by digest is shown whole; only a URL's user and password are masked", () => {
        const digest = `sha256:${"a".repeat(64)}`;
        expect(fixesOf({ ...v, baseImage: `Python@${digest}` })).toEqual([
            `pulumi config set --stack dev baseImage python@${digest}`,
        ]);
        expect(errorOf({ ...v, sourceUrl: "https://me:hunter2@host" })).not.toContain("hunter2");
    });

    it("offers rm for the default only when the value is not the default already", () => {
        expect(fixesOf({ ...v, modelContext: "model", dockerfile: "Dockerfile.none" })).toEqual([
            "pulumi config set --stack dev dockerfile <file>, or pulumi config rm --stack dev dockerfile for the default (Dockerfile)",
        ]);
        // dockerfile left at its default, and no such file in the context: rm would change nothing.
        expect(fixesOf({ ...v, modelContext: "docs" })).toEqual([
            "pulumi config set --stack dev dockerfile <file>",
        ]);
        expect(fixesOf({ ...v, modelContext: "no-such-dir" })).toEqual([
            "pulumi config set --stack dev modelContext <directory>, or pulumi config rm --stack dev modelContext for the default (model)",
        ]);
    });

    it("a value that starts with '-' comes after --, or the CLI would read it as a flag", () => {
        expect(fixesOf({ ...v, modelRevision: " -x " })).toEqual([
            "pulumi config set --stack dev modelRevision -- -x",
        ]);
        // A plain value where a list belongs: the CLI refuses it first (config.test.ts).
        expect(fixesOf({ ...v, architectures: "-arm" }, { skipValidation: true })).toEqual([
            "pulumi config rm --stack dev architectures && pulumi config set --stack dev --path 'architectures[0]' -- -arm",
        ]);
    });

    it("says a file given as modelContext is a file, and for a Dockerfile suggests its directory", () => {
        const msg = errorOf({ ...v, modelContext: "model/Dockerfile" });
        expect(msg).toContain(
            `model-registry:modelContext = "model/Dockerfile": ${JSON.stringify(path.resolve("model/Dockerfile"))} is a file, not a directory`,
        );
        expect(msg.endsWith("Fix: pulumi config set --stack dev modelContext model")).toBe(true);
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
                `    Fix: pulumi config set --stack dev modelContext ${path.dirname(rel)} && pulumi config set --stack dev dockerfile Dockerfile.gpu`,
            );
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    it("honours an explicit empty operatingSystems list (no badge)", () => {
        // No `pulumi config set --stack dev` makes an empty list: the stack file says `[]`.
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
