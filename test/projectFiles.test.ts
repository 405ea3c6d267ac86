import * as fs from "fs";
import * as YAML from "yaml";
import { CONFIG_KEYS, ConfigKey, readConfig } from "../config";
import { stackFile } from "./support/program";
import { programConfig } from "./support/pulumiCli";

interface Declaration {
    type: string;
    description?: string;
    default?: unknown;
    items?: { type: string };
}

const project = YAML.parse(fs.readFileSync("Pulumi.yaml", "utf8")) as {
    name: string;
    runtime: { name: string; options?: { typescript?: boolean } };
    config: Record<string, Declaration>;
};
const stacks = fs
    .readdirSync(".")
    .filter((f) => /^Pulumi\.[^.]+\.yaml$/.test(f))
    .sort();

describe("Pulumi.yaml", () => {
    it("is a TypeScript nodejs project named model-registry", () => {
        expect(project.name).toBe("model-registry");
        expect(project.runtime).toEqual({ name: "nodejs", options: { typescript: true } });
    });

    it("declares exactly the keys the program reads", () => {
        expect(Object.keys(project.config).sort()).toEqual(Object.keys(CONFIG_KEYS).sort());
    });

    it.each(Object.keys(CONFIG_KEYS) as ConfigKey[])(
        "declares %s with the program's type and default",
        (key) => {
            const declared = project.config[key];
            const spec = CONFIG_KEYS[key];
            expect(declared.type).toBe(spec.kind);
            expect(declared.description?.length).toBeGreaterThan(10);
            if (spec.kind === "array") expect(declared.items).toEqual({ type: "string" });
            if (spec.default === undefined) {
                expect(declared).not.toHaveProperty("default");
            } else {
                expect(declared.default).toEqual(spec.default);
            }
        },
    );
});

describe("stack files", () => {
    it("exist for dev, staging, prod and local", () => {
        expect(stacks).toEqual([
            "Pulumi.dev.yaml",
            "Pulumi.local.yaml",
            "Pulumi.prod.yaml",
            "Pulumi.staging.yaml",
        ]);
    });

    it.each(stacks)(
        "%s passes the CLI's checks (required keys, types, secrets) and the program's",
        (file) => {
            const stack = file.split(".")[1];
            const cli = programConfig(stackFile(stack), stack);
            const config = readConfig(cli.config, (k) => cli.secretKeys.includes(k), {
                project: project.name,
                stack,
            });
            expect(config.repositoryName).toBe(`model-registry-${stack}`);
            if (stack === "prod") {
                expect(config.protect).toBe(true);
                expect(config.forceDestroy).toBe(false);
            }
        },
    );
});
