/**
 * CI check of the Pulumi project files, which no Pulumi CLI reads here:
 *   - Pulumi.yaml against the project JSON schema (path given as the first argument);
 *   - every Pulumi.<stack>.yaml against the stack-file rules.
 * Usage: ts-node scripts/check-project-files.ts <pulumi-project.schema.json>
 */
import Ajv2020 from "ajv/dist/2020";
import * as fs from "fs";
import * as YAML from "yaml";
import { ProjectFile, stackFileProblems } from "./projectRules";

function main(): number {
    const schemaPath = process.argv[2];
    if (!schemaPath) {
        console.error("usage: check-project-files <pulumi-project.schema.json>");
        return 2;
    }
    const schema = JSON.parse(fs.readFileSync(schemaPath, "utf8"));
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    const validate = ajv.compile(schema);

    const project = YAML.parse(fs.readFileSync("Pulumi.yaml", "utf8")) as ProjectFile;
    const problems: string[] = [];
    if (!validate(project)) {
        for (const e of validate.errors ?? [])
            problems.push(`Pulumi.yaml${e.instancePath || "/"}: ${e.message}`);
    }
    const stackFiles = fs
        .readdirSync(".")
        .filter((f) => /^Pulumi\.[^.]+\.yaml$/.test(f))
        .sort();
    if (stackFiles.length === 0) problems.push("no Pulumi.<stack>.yaml files");
    for (const file of stackFiles) {
        problems.push(
            ...stackFileProblems(file, YAML.parse(fs.readFileSync(file, "utf8")), project),
        );
    }

    if (problems.length > 0) {
        console.error(problems.join("\n"));
        return 1;
    }
    console.log(
        `Pulumi.yaml matches the project schema; ${stackFiles.join(", ")} follow the stack-file rules.`,
    );
    return 0;
}

process.exit(main());
