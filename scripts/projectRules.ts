/**
 * Rules for Pulumi stack files that the engine enforces but nothing here can run (no Pulumi CLI):
 * values only, keys namespaced, project keys declared in Pulumi.yaml. Shared by the test suite and
 * by scripts/check-project-files.ts, which CI runs.
 */

export interface ProjectFile {
    readonly name: string;
    readonly config?: Record<string, unknown>;
}

/** What is wrong with one stack file's parsed YAML, as sentences; empty when it is fine. */
export function stackFileProblems(file: string, doc: unknown, project: ProjectFile): string[] {
    const problems: string[] = [];
    if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
        return [`${file}: expected a mapping with a "config" key`];
    }
    const allowedTop = new Set([
        "config",
        "secretsprovider",
        "encryptedkey",
        "encryptionsalt",
        "environment",
    ]);
    for (const key of Object.keys(doc)) {
        if (!allowedTop.has(key)) problems.push(`${file}: unexpected top-level key "${key}"`);
    }
    const config = (doc as { config?: unknown }).config ?? {};
    if (typeof config !== "object" || config === null || Array.isArray(config)) {
        return [...problems, `${file}: "config" must be a mapping of keys to values`];
    }
    const declared = new Set(Object.keys(project.config ?? {}));
    for (const [key, value] of Object.entries(config)) {
        const parts = key.split(":");
        const [ns, name] = parts.length === 1 ? [project.name, parts[0]] : parts;
        if (parts.length > 2 || !name) {
            problems.push(`${file}: "${key}" is not a config key (<namespace>:<name>)`);
            continue;
        }
        if (ns === project.name && !declared.has(name)) {
            problems.push(`${file}: "${key}" is not declared in Pulumi.yaml's config`);
        }
        const isSchema =
            typeof value === "object" &&
            value !== null &&
            !Array.isArray(value) &&
            ["type", "default", "description", "items"].some((k) => k in value) &&
            !("secure" in value) &&
            !("value" in value);
        if (isSchema) {
            problems.push(
                `${file}: "${key}" holds a schema (type/default/...); stack files hold values only`,
            );
        }
    }
    return problems;
}
