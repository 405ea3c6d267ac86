/**
 * The Pulumi CLI's handling of config, modelled from its source, for tests: no CLI can be
 * installed here, and a program test must get only a config the CLI could produce.
 *
 * Read from pulumi/pulumi (commit 1b5949891b3cefcb9974752b24a5ecef0acc86c8):
 * - `pkg/workspace/config.go`: `mergeConfig` (declared defaults written into the stack's config,
 *   required keys, the "missing configuration value" error), `createConfigValue`,
 *   `validateStackConfigValues` / `validateStackConfigValue` (secret and type checks).
 * - `sdk/go/common/workspace/project.go`: `Project.Validate` (a default of the wrong type) and
 *   `ValidateConfigValue` (what each declared type accepts).
 * - `sdk/go/common/workspace/loaders.go`: `LoadProjectStackBytes` (bare keys get the project's
 *   namespace; an empty value is read as "").
 * - `sdk/go/common/resource/config/`: `object.go` (`unmarshalObject`, `MarshalString`,
 *   `coerce`, `object.Set`/`Delete`), `map.go` (`Map.Set`/`Remove`/`Decrypt`/`SecureKeys`),
 *   `plaintext.go` (`marshalText`: what the program receives).
 * - `pkg/cmd/pulumi/config/config.go`: `configSetCmd.Run` (`set`, `--path`, `--secret`, `--type`)
 *   and `io.go` `parseConfigKey`.
 * Secrets are "encrypted" with the stand-in the CLI's own tests use (`config.Base64Crypter`).
 * Not modelled: ESC environments, and `config set`'s "looks like a secret" refusal (an entropy
 * heuristic), which only ever refuses a command, never changes what is stored.
 */
import * as YAML from "yaml";

/** A config value as the CLI holds it (`object` in config/object.go); `{ secure }` is a secret. */
export type Obj = string | boolean | number | Obj[] | { [key: string]: Obj } | null;

interface ConfigType {
    readonly type?: string;
    readonly items?: { type: string; items?: unknown };
    readonly default?: unknown;
    readonly value?: unknown;
    readonly secret?: boolean;
}

export interface Project {
    readonly name: string;
    readonly config: Readonly<Record<string, ConfigType>>;
}

/** What the program receives: `PULUMI_CONFIG` (every value as text) and the secret keys. */
export interface ProgramConfig {
    readonly config: Record<string, string>;
    readonly secretKeys: string[];
}

/** An error the CLI prints before the program starts. */
export class CliError extends Error {}

const isSecure = (v: Obj | undefined): v is { secure: string } =>
    v !== null &&
    typeof v === "object" &&
    !Array.isArray(v) &&
    Object.keys(v).length === 1 &&
    typeof (v as Record<string, unknown>).secure === "string";

const encrypt = (plaintext: string) => Buffer.from(plaintext).toString("base64");
const decrypt = (ciphertext: string) => Buffer.from(ciphertext, "base64").toString();

/** `Project.Validate`: a default of another type than declared stops every command. */
export function loadProject(text: string): Project {
    const doc = YAML.parse(text) as { name?: string; config?: Record<string, unknown> };
    if (!doc?.name) throw new CliError("project is missing a 'name' attribute");
    const config: Record<string, ConfigType> = {};
    for (const [key, raw] of Object.entries(doc.config ?? {})) {
        // A plain value is shorthand for `{ value: ... }` (SimplifyMarshalledProject).
        const t: ConfigType =
            raw !== null && typeof raw === "object" && !Array.isArray(raw)
                ? (raw as ConfigType)
                : { value: raw };
        if (t.default !== undefined && t.value !== undefined) {
            throw new CliError(
                `project config '${key}' cannot have both a 'default' and 'value' attribute`,
            );
        }
        if (t.type === "array" && !t.items) {
            throw new CliError(
                `The configuration key '${key}' declares an array but does not specify the underlying type via the 'items' attribute`,
            );
        }
        if (t.type && t.default !== undefined && !validValue(t.type, t.items, t.default)) {
            throw new CliError(
                `The default value specified for configuration key '${key}' is not of the expected type '${typeName(t.type, t.items)}'`,
            );
        }
        config[key] = t;
    }
    return { name: doc.name, config };
}

/** A stack's config (a `Pulumi.<stack>.yaml`), changed as `pulumi config set/rm` change it. */
export class StackConfig {
    readonly values = new Map<string, Obj>();

    constructor(
        readonly project: Project,
        stackFileText = "",
    ) {
        const doc = (YAML.parse(stackFileText) ?? {}) as { config?: Record<string, unknown> };
        for (const [key, value] of Object.entries(doc.config ?? {})) {
            // An empty value is read as "" (with a warning), not null.
            this.values.set(this.fullKey(key), value === null ? "" : toObj(value));
        }
    }

    /**
     * `pulumi config set <key> <value> [--path] [--secret] [--type]`. A top-level value is
     * stored as a string; under `--path`, "true"/"false" become booleans and digits (without a
     * leading 0) integers.
     */
    set(
        key: string,
        value: string,
        opts: { path?: boolean; secret?: boolean; type?: "string" | "int" | "bool" | "float" } = {},
    ): this {
        let stored: Obj;
        if (opts.secret) stored = { secure: encrypt(value) };
        else if (opts.type === "int") stored = parseInt(value, 10);
        else if (opts.type === "float") stored = parseFloat(value);
        else if (opts.type === "bool") stored = value === "true";
        else stored = value;
        const { name, path } = this.parsePath(key, opts.path ?? false);
        if (path.length === 0) {
            this.values.set(name, stored);
            return this;
        }
        const leaf = !opts.secret && !opts.type ? coerce(value) : stored;
        const root = this.values.get(name);
        const container: Obj = Array.isArray(root) || isMap(root) ? root : newContainer(path[0]);
        setAt(container, path, leaf, name);
        this.values.set(name, container);
        return this;
    }

    /** `pulumi config rm <key> [--path]`. */
    rm(key: string, opts: { path?: boolean } = {}): this {
        const { name, path } = this.parsePath(key, opts.path ?? false);
        if (path.length === 0) {
            this.values.delete(name);
            return this;
        }
        let parent: Obj | undefined = this.values.get(name);
        for (const segment of path.slice(0, -1)) {
            parent = child(parent, segment);
        }
        const last = path[path.length - 1];
        if (Array.isArray(parent) && typeof last === "number") parent.splice(last, 1);
        else if (isMap(parent) && typeof last === "string") delete parent[last];
        return this;
    }

    /** The stack file the CLI writes after these commands. */
    toYaml(): string {
        return YAML.stringify({ config: Object.fromEntries(this.values) });
    }

    /** A bare key is in the project's namespace. */
    fullKey(key: string): string {
        return key.includes(":") ? key : `${this.project.name}:${key}`;
    }

    /** `parseConfigKey` and `parseKeyPath`: `k`, `k[0]`, `k.a`, `k["a.b"]`. */
    private parsePath(key: string, isPath: boolean): { name: string; path: (string | number)[] } {
        const cut = isPath ? key.search(/[[.]/) : -1;
        if (cut <= 0) return { name: this.fullKey(key), path: [] };
        const name = this.fullKey(key.slice(0, cut));
        const path: (string | number)[] = [];
        const segment = /^(?:\.([^.[\]]+)|\[(\d+)\]|\["([^"]*)"\])/;
        let rest = key.slice(cut);
        while (rest !== "") {
            const m = segment.exec(rest);
            if (!m) throw new CliError(`invalid configuration key: ${key}`);
            path.push(m[2] !== undefined ? Number(m[2]) : (m[1] ?? m[3]));
            rest = rest.slice(m[0].length);
        }
        return { name, path };
    }
}

/**
 * What `pulumi up` / `preview` do with the project's declared config before the program starts
 * (`ValidateStackConfigAndApplyProjectConfig`): writes declared defaults into the stack's config,
 * stops on missing required keys (all in one message), then on the first value (in key order)
 * that is not a secure value where `secret: true` or not of its declared type. Returns what the
 * program receives. `skipValidation` is `pulumi up --skip-config-validation`
 * (`ApplyProjectConfig`): defaults written in, nothing checked.
 */
export function programConfig(
    stack: StackConfig,
    stackName: string,
    opts: { skipValidation?: boolean } = {},
): ProgramConfig {
    const { project } = stack;
    const merged = new Map(stack.values);
    const keys = Object.keys(project.config).sort();
    const missing: string[] = [];
    for (const key of keys) {
        const t = project.config[key];
        const full = stack.fullKey(key);
        if (merged.has(full)) continue;
        const fallback = t.default !== undefined ? t.default : t.value;
        if (fallback === undefined) {
            if (full.startsWith(`${project.name}:`)) missing.push(key);
            continue;
        }
        // createConfigValue: a string, integer or boolean as its text; anything else as JSON.
        merged.set(
            full,
            ["string", "boolean"].includes(typeof fallback) || Number.isInteger(fallback)
                ? String(fallback)
                : toObj(fallback),
        );
    }
    if (opts.skipValidation) return programView(merged);
    if (missing.length > 0) {
        throw new CliError(
            `Stack '${stackName}' is missing configuration ${missing.length === 1 ? "value" : "values"} ${formatMissingKeys(missing)}`,
        );
    }
    for (const key of keys) {
        const t = project.config[key];
        if (!t.type) continue;
        const value = merged.get(stack.fullKey(key)) ?? "";
        if (t.secret && !isSecure(value)) {
            throw new CliError(
                `Stack '${stackName}' with configuration key '${key}' must be encrypted as it's secret`,
            );
        }
        // A stack value reaches the check as its text, parsed back only when it is an object.
        const text = marshalText(value);
        const structured = value !== null && typeof value === "object" && !isSecure(value);
        if (!validValue(t.type, t.items, structured ? JSON.parse(text) : text)) {
            throw new CliError(
                `Stack '${stackName}' with configuration key '${key}' must be of type '${typeName(t.type, t.items)}'`,
            );
        }
    }
    return programView(merged);
}

/** `Map.Decrypt` and `Map.SecureKeys`: each value as text, and which keys hold secrets. */
function programView(merged: Map<string, Obj>): ProgramConfig {
    const config: Record<string, string> = {};
    const secretKeys: string[] = [];
    for (const [key, value] of merged) {
        config[key] = marshalText(value);
        if (containsSecure(value)) secretKeys.push(key);
    }
    return { config, secretKeys };
}

/** `ValidateConfigValue`. Strings pass for integer and boolean types when they parse. */
function validValue(type: string, items: ConfigType["items"], value: unknown): boolean {
    switch (type) {
        case "string":
            return typeof value === "string";
        case "integer":
            if (typeof value === "number") return Number.isInteger(value);
            // strconv.Atoi: an optional sign and decimal digits, within 64 bits.
            return (
                typeof value === "string" &&
                /^[+-]?\d+$/.test(value) &&
                BigInt(value) <= 9223372036854775807n &&
                BigInt(value) >= -9223372036854775808n
            );
        case "boolean":
            return typeof value === "boolean" || value === "true" || value === "false";
        default:
            return (
                Array.isArray(value) &&
                items !== undefined &&
                value.every((v) => validValue(items.type, items.items as ConfigType["items"], v))
            );
    }
}

function typeName(type: string, items: ConfigType["items"]): string {
    return items ? `array<${typeName(items.type, items.items as ConfigType["items"])}>` : type;
}

function formatMissingKeys(keys: string[]): string {
    if (keys.length === 1) return `'${keys[0]}'`;
    const quoted = [...keys].sort().map((k) => `'${k}'`);
    return `${quoted.slice(0, -1).join(", ")} and ${quoted[quoted.length - 1]}`;
}

/** `unmarshalObject` of a parsed YAML value. */
function toObj(value: unknown): Obj {
    if (Array.isArray(value)) return value.map(toObj);
    if (value !== null && typeof value === "object") {
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toObj(v)]));
    }
    return value as Obj;
}

/** `coerce`: under `--path`, "true"/"false" are booleans and digits without a leading 0 integers. */
function coerce(value: string): Obj {
    if (value === "true" || value === "false") return value === "true";
    if (!(value.length > 1 && value[0] === "0") && /^-?\d+$/.test(value)) {
        const n = BigInt(value);
        if (n >= -9223372036854775808n && n <= 18446744073709551615n) return Number(value);
    }
    return value;
}

function isMap(v: Obj | undefined): v is { [key: string]: Obj } {
    return v !== null && typeof v === "object" && !Array.isArray(v) && !isSecure(v);
}

function newContainer(accessor: string | number): Obj {
    return typeof accessor === "number" ? new Array<Obj>(accessor + 1).fill(null) : {};
}

function child(parent: Obj | undefined, segment: string | number): Obj | undefined {
    if (Array.isArray(parent) && typeof segment === "number") return parent[segment];
    if (isMap(parent) && typeof segment === "string") return parent[segment];
    return undefined;
}

/** `object.Set`: an index may be at most one past the end; a map must not become `{secure}`. */
function setAt(container: Obj, path: (string | number)[], leaf: Obj, prefix: string): void {
    const [head, ...rest] = path;
    const here = `${prefix}${typeof head === "number" ? `[${head}]` : `.${head}`}`;
    const assign = (current: Obj | undefined): Obj => {
        if (rest.length === 0) return leaf;
        const next =
            Array.isArray(current) || isMap(current)
                ? current
                : current === null || current === undefined
                  ? newContainer(rest[0])
                  : undefined;
        if (next === undefined) {
            throw new CliError(
                `could not set config: ${here}: expected ${typeof rest[0] === "number" ? "an array" : "a map"}`,
            );
        }
        setAt(next, rest, leaf, here);
        return next;
    };
    if (Array.isArray(container)) {
        if (typeof head !== "number") {
            throw new CliError(`could not set config: ${here}: key for an array must be an int`);
        }
        if (head > container.length) {
            throw new CliError(`could not set config: ${here}: array index out of range`);
        }
        container[head] = assign(container[head]);
    } else if (isMap(container)) {
        if (typeof head !== "string") {
            throw new CliError(`could not set config: ${here}: key for a map must be a string`);
        }
        container[head] = assign(container[head]);
    }
}

function containsSecure(v: Obj): boolean {
    if (isSecure(v)) return true;
    if (Array.isArray(v)) return v.some(containsSecure);
    return isMap(v) && Object.values(v).some(containsSecure);
}

/** `Plaintext.marshalText`: strings as they are, secrets decrypted, the rest as Go's JSON. */
function marshalText(v: Obj): string {
    if (typeof v === "string") return v;
    if (isSecure(v)) return decrypt(v.secure);
    return goJson(v);
}

/** Go's `json.Marshal`: map keys sorted, <, > and & (and U+2028/9) escaped, secrets decrypted. */
function goJson(v: Obj): string {
    if (v === null) return "null";
    if (isSecure(v)) return goJson(decrypt(v.secure));
    if (Array.isArray(v)) return `[${v.map(goJson).join(",")}]`;
    if (typeof v === "object") {
        const entries = Object.keys(v)
            .sort()
            .map((k) => `${goJson(k)}:${goJson(v[k])}`);
        return `{${entries.join(",")}}`;
    }
    return JSON.stringify(v).replace(
        /[<>&\u2028\u2029]/g,
        (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    );
}
