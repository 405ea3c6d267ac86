/**
 * CI check of Pulumi.yaml against the project JSON schema (path given as the first argument),
 * which the tests cannot read. The stack files go through the CLI's own checks and the program's
 * in test/projectFiles.test.ts (test/support/pulumiCli.ts models the CLI).
 * Usage: ts-node scripts/check-project-files.ts <pulumi-project.schema.json>
 */
import Ajv2020 from "ajv/dist/2020";
import * as fs from "fs";
import * as YAML from "yaml";

function main(): number {
    const schemaPath = process.argv[2];
    if (!schemaPath) {
        console.error("usage: check-project-files <pulumi-project.schema.json>");
        return 2;
    }
    const schema = JSON.parse(fs.readFileSync(schemaPath, "utf8"));
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    const validate = ajv.compile(schema);

    const project: unknown = YAML.parse(fs.readFileSync("Pulumi.yaml", "utf8"));
    if (!validate(project)) {
        for (const e of validate.errors ?? [])
            console.error(`Pulumi.yaml${e.instancePath || "/"}: ${e.message}`);
        return 1;
    }
    console.log("Pulumi.yaml matches the project schema.");
    return 0;
}

process.exit(main());
