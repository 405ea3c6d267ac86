import { createHash } from "crypto";

type Pulumi = typeof import("@pulumi/pulumi");

/** One resource the program registered, with its inputs and the options that reached the engine. */
export interface RecordedResource {
    readonly type: string;
    readonly name: string;
    readonly custom: boolean;
    /** Provider reference (`<urn>::<id>`) for a custom resource, empty for the default provider. */
    readonly provider: string;
    readonly inputs: Record<string, any>;
    readonly parent: string;
    readonly protect: boolean;
    readonly retainOnDelete: boolean;
    /** Input paths registered with `ignoreChanges`. */
    readonly ignoreChanges: readonly string[];
    readonly dependencies: readonly string[];
    /** Dotted paths of the inputs that reached the engine as secrets (unwrapped in `inputs`). */
    readonly secretPaths: readonly string[];
}

export interface RecordedInvoke {
    readonly token: string;
    readonly inputs: Record<string, any>;
}

export type InvokeHandler = (inputs: Record<string, any>) => Record<string, any>;

export interface MockOptions {
    readonly project?: string;
    readonly stack?: string;
    readonly preview?: boolean;
    /** Config as the CLI hands it to the program (test/support/pulumiCli.ts): `<project>:<key>` to text. */
    readonly config?: Record<string, string>;
    /** The keys of `config` the stack holds as secrets. */
    readonly secretKeys?: readonly string[];
    /** Invoke results by token. An invoke without a handler throws. */
    readonly invokes?: Record<string, InvokeHandler>;
    /** Outputs of other stacks by stack name; the default is a dev-like ECR Public stack. */
    readonly stackOutputs?: Record<string, Record<string, unknown>>;
}

/** The resource types the program registers, as the engine names them. */
export const REPO = "aws:ecrpublic/repository:Repository";
export const POLICY = "aws:ecrpublic/repositoryPolicy:RepositoryPolicy";
export const PRIVATE_REPO = "aws:ecr/repository:Repository";
export const PRIVATE_POLICY = "aws:ecr/repositoryPolicy:RepositoryPolicy";
export const LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy";
export const IMAGE = "docker:index/image:Image";
export const CONTAINER = "docker:index/container:Container";
export const VOLUME = "docker:index/volume:Volume";
export const REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage";
export const GUARD = "pulumi-nodejs:dynamic/model-registry:TagGuard";
export const RECORD = "pulumi-nodejs:dynamic/model-registry:PublicationRecord";
export const PROMOTION = "pulumi-nodejs:dynamic/model-registry:ImagePromotion";
export const SOURCE_CHECK = "pulumi-nodejs:dynamic/model-registry:PromotionSourceCheck";
export const LOGIN = "pulumi-nodejs:dynamic/model-registry:RegistryLogin";
export const STACK_REF = "pulumi:pulumi:StackReference";

export const ECR_TOKEN_INVOKE = "aws:ecrpublic/getAuthorizationToken:getAuthorizationToken";
export const ECR_PRIVATE_TOKEN_INVOKE = "aws:ecr/getAuthorizationToken:getAuthorizationToken";
export const ACCOUNT_ID = "123456789012";
/** The private registry of the mocked account, in the dev stack file's region. */
export const PRIVATE_SERVER = `${ACCOUNT_ID}.dkr.ecr.us-west-2.amazonaws.com`;
export const FAKE_PASSWORD = "eyJwYXlsb2FkIjoiZmFrZS10b2tlbiJ9";
export const REGISTRY_ALIAS = "a1b2c3d4";
/** The generated password of a local stack's own registry, under the mocks. */
export const FAKE_REGISTRY_PASSWORD = "generated-registry-password";

/** Invoke results a healthy AWS account would give. */
export const defaultInvokes: Record<string, InvokeHandler> = {
    [ECR_TOKEN_INVOKE]: () => ({
        authorizationToken: Buffer.from(`AWS:${FAKE_PASSWORD}`).toString("base64"),
        expiresAt: "2026-11-26T18:00:00Z",
        id: "us-east-1",
        password: FAKE_PASSWORD,
        region: "us-east-1",
        userName: "AWS",
    }),
    [ECR_PRIVATE_TOKEN_INVOKE]: () => ({
        authorizationToken: Buffer.from(`AWS:${FAKE_PASSWORD}`).toString("base64"),
        expiresAt: "2026-11-26T18:00:00Z",
        id: "us-west-2",
        password: FAKE_PASSWORD,
        proxyEndpoint: `https://${PRIVATE_SERVER}`,
        userName: "AWS",
    }),
};

const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

/** Replaces the engine's secret wrappers by their values, noting where they were. */
function unwrapSecrets(value: any, path: string, found: string[]): any {
    if (Array.isArray(value)) return value.map((v, i) => unwrapSecrets(v, `${path}[${i}]`, found));
    if (value === null || typeof value !== "object") return value;
    if (value["4dabf18193072939515e22adb298388d"] === SECRET_SIG) {
        found.push(path);
        return unwrapSecrets(value.value, path, []);
    }
    return Object.fromEntries(
        Object.entries(value).map(([k, v]) => [
            k,
            unwrapSecrets(v, path ? `${path}.${k}` : k, found),
        ]),
    );
}

function secretPathsOf(raw: unknown): string[] {
    const found: string[] = [];
    unwrapSecrets(raw, "", found);
    return found;
}

/** What AWS and the Docker provider would report for a registered resource. */
function fakeState(
    type: string,
    name: string,
    inputs: Record<string, any>,
    stackOutputs: Record<string, Record<string, unknown>> = {},
): Record<string, any> {
    switch (type) {
        case "aws:ecr/repository:Repository":
            return {
                ...inputs,
                arn: `arn:aws:ecr:us-west-2:${ACCOUNT_ID}:repository/${inputs.name}`,
                registryId: ACCOUNT_ID,
                repositoryUrl: `${PRIVATE_SERVER}/${inputs.name}`,
            };
        case "docker:index/remoteImage:RemoteImage":
            return { ...inputs, imageId: `sha256:${"3".repeat(64)}`, repoDigest: "" };
        case "aws:ecrpublic/repository:Repository":
            return {
                ...inputs,
                arn: `arn:aws:ecr-public::123456789012:repository/${inputs.repositoryName}`,
                registryId: "123456789012",
                repositoryUri: `public.ecr.aws/${REGISTRY_ALIAS}/${inputs.repositoryName}`,
            };
        case "docker:index/image:Image": {
            const repo = String(inputs.imageName).replace(/:[^:/]+$/, "");
            const digest = createHash("sha256").update(JSON.stringify(inputs)).digest("hex");
            return {
                ...inputs,
                repoDigest: `${repo}@sha256:${digest}`,
                baseImageName: inputs.imageName,
            };
        }
        case "pulumi:pulumi:StackReference": {
            // Another stack of the project: its repository_uri output, as the program exports it.
            const stack = String(inputs.name).split("/").pop() ?? "";
            const outputs = stackOutputs[stack];
            return {
                ...inputs,
                outputs: outputs ?? {
                    repository_uri: `public.ecr.aws/${REGISTRY_ALIAS}/model-registry-${stack}`,
                    published_versions: {
                        "1.0.0": { fingerprint: "", digest: `sha256:${"7".repeat(64)}` },
                    },
                },
                // A local stack's registry login is a secret output, as index.ts exports it.
                secretOutputNames: outputs && "registry_login" in outputs ? ["registry_login"] : [],
            };
        }
        case "pulumi-nodejs:dynamic/model-registry:ImagePromotion": {
            // What the promotion's provider reports: the source's digest, copied.
            const digest = `sha256:${createHash("sha256")
                .update(String(inputs.sourceRepositoryUri) + inputs.tag)
                .digest("hex")}`;
            return {
                ...inputs,
                digest,
                modelSha256: `sha256:${"5".repeat(64)}`,
                history: {
                    [inputs.tag]: { fingerprint: "", digest, source: inputs.sourceRepositoryUri },
                },
            };
        }
        case "pulumi-nodejs:dynamic/model-registry:RegistryLogin":
            // What the login's provider makes: a password and its htpasswd line.
            return {
                ...inputs,
                password: FAKE_REGISTRY_PASSWORD,
                htpasswd: `${inputs.username}:$2b$10$${"x".repeat(53)}\n`,
            };
        case "pulumi-nodejs:dynamic/model-registry:PublicationRecord": {
            // What the record's provider reports after a push: the digest under the tag.
            const digest = String(inputs.repoDigest).split("@")[1];
            const history = { [inputs.tag]: { fingerprint: inputs.fingerprint, digest } };
            return { ...inputs, digest, history };
        }
        default:
            return { ...inputs };
    }
}

/**
 * Records everything a program registers under `pulumi.runtime.setMocks`. Create one per program
 * run, with the `@pulumi/pulumi` instance that program will import.
 */
export class Recorder {
    readonly resources: RecordedResource[] = [];
    readonly invokes: RecordedInvoke[] = [];
    private readonly options = new Map<string, Omit<RecordedResource, "inputs" | "provider">>();

    static async start(pulumi: Pulumi, opts: MockOptions = {}): Promise<Recorder> {
        const recorder = new Recorder();
        const handlers = { ...defaultInvokes, ...opts.invokes };
        await pulumi.runtime.setMocks(
            {
                newResource: (args) => {
                    const key = `${args.type}::${args.name}`;
                    const o = recorder.options.get(key);
                    // The SDK's deserializer marks a whole object secret when one of its fields
                    // is; the exact paths come from the raw request (see registerResource below).
                    const inputs = unwrapSecrets(args.inputs, "", []);
                    const state = fakeState(args.type, args.name, inputs, opts.stackOutputs);
                    recorder.resources.push({
                        type: args.type,
                        name: args.name,
                        custom: args.custom ?? false,
                        provider: args.provider ?? "",
                        inputs,
                        secretPaths: o?.secretPaths ?? [],
                        parent: o?.parent ?? "",
                        protect: o?.protect ?? false,
                        retainOnDelete: o?.retainOnDelete ?? false,
                        ignoreChanges: o?.ignoreChanges ?? [],
                        dependencies: o?.dependencies ?? [],
                    });
                    return { id: args.custom ? `${args.name}-id` : undefined, state };
                },
                call: (args) => {
                    recorder.invokes.push({ token: args.token, inputs: args.inputs });
                    const handler = handlers[args.token];
                    if (!handler) throw new Error(`mock not implemented: invoke ${args.token}`);
                    return handler(args.inputs);
                },
            },
            opts.project ?? "model-registry",
            opts.stack ?? "dev",
            opts.preview ?? false,
            // A local backend's organization: bare stack names in promoteFrom resolve in it.
            "organization",
        );
        pulumi.runtime.setAllConfig(opts.config ?? {}, [...(opts.secretKeys ?? [])]);

        // The mock API does not pass resource options to newResource; read them off the request.
        const monitor = pulumi.runtime.getMonitor() as any;
        const register = monitor.registerResource.bind(monitor);
        monitor.registerResource = (req: any, callback: any) => {
            recorder.options.set(`${req.getType()}::${req.getName()}`, {
                type: req.getType(),
                name: req.getName(),
                custom: req.getCustom(),
                parent: req.getParent(),
                protect: req.getProtect() ?? false,
                retainOnDelete: req.getRetainondelete() ?? false,
                ignoreChanges: req.getIgnorechangesList(),
                dependencies: req.getDependenciesList(),
                secretPaths: secretPathsOf(req.getObject()?.toJavaScript() ?? {}),
            });
            return register(req, callback);
        };
        return recorder;
    }

    /** Waits until every registration and invoke the program started has finished. */
    async settle(): Promise<void> {
        // waitForRPCs is internal to the SDK (not in its typings), but it is what `pulumi up`
        // itself waits on before it disconnects.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const settings = require("@pulumi/pulumi/runtime/settings") as {
            waitForRPCs(): Promise<void>;
        };
        await settings.waitForRPCs();
    }

    /** The one resource of a type (and name, when given); fails when there is not exactly one. */
    one(type: string, name?: string): RecordedResource {
        const found = this.all(type).filter((r) => name === undefined || r.name === name);
        if (found.length !== 1) {
            throw new Error(
                `expected one ${type}${name ? ` named ${name}` : ""}, found ${found.length}`,
            );
        }
        return found[0];
    }

    all(type: string): RecordedResource[] {
        return this.resources.filter((r) => r.type === type);
    }

    /** Types of every resource registered, in order. */
    types(): string[] {
        return this.resources.map((r) => r.type);
    }
}

/** Resolves an Output's value (undefined while unknown, as in a preview). */
export function valueOf<T>(output: import("@pulumi/pulumi").Output<T>): Promise<T> {
    return new Promise((resolve) => output.apply((v) => resolve(v)));
}

/** True when the Output is marked secret. */
export async function isSecret(output: import("@pulumi/pulumi").Output<unknown>): Promise<boolean> {
    return (await (output as any).isSecret) === true;
}
