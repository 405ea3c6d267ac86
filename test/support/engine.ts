/**
 * `pulumi up` of ModelImage's three steps, driven the way the engine drives them, for flows that
 * cross runs: the guard and the publication record run in the SDK's own dynamic provider host
 * (serialized as `pulumi up` serializes them); docker.Image is played by the real Docker engine
 * with the provider's rules (one image resource per version, created once with the `skipPush` the
 * program decides, updated with a rebuild and a push when its build inputs change); state is kept
 * between runs as the engine keeps it (checked inputs and outputs; a failed step leaves the
 * previous state).
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ModelBuildSpec, modelBuildSpec } from "../../lib/publication/buildSpec";
import { RegistryInputs } from "../../lib/publication/publishInputs";
import { docker } from "./docker";
import {
    ProviderHost,
    serializeProvidersAsPulumiUp,
    startDynamicProviderHost,
} from "./dynamicProviderHost";
import { LocalRegistry } from "./registry";

interface ResourceState {
    id: string;
    inputs: Record<string, unknown>;
    outputs: Record<string, unknown>;
}

/** docker.Image's inputs as the program gives them (the registry block without credentials). */
interface ImageInputs {
    imageName: string;
    /** The build input as given (the provider's Diff compares all of it, paths included). */
    build: string;
    registry: { server: string };
    skipPush: boolean;
}

interface ImageState {
    inputs: ImageInputs;
    repoDigest: string;
}

/** The resource options the program gives docker.Image that change how the engine diffs it. */
export interface ImageOptions {
    readonly ignoreChanges: readonly string[];
    readonly replaceOnChanges: readonly string[];
}

/** What components/modelImage.ts registers (test/imageAddress.flow.test.ts checks it does). */
export const MODEL_IMAGE_OPTIONS: ImageOptions = {
    ignoreChanges: ["skipPush"],
    replaceOnChanges: ["imageName", "registry"],
};

/**
 * pulumi-docker's Diff of docker.Image (provider/provider.go, Diff and diffUpdates): every input
 * compared (`oldInputs.Diff(news)`), except that in `registry` only `server` counts (username
 * and password rotate). Returns the changed top-level keys, as its DetailedDiff names them.
 */
export function dockerImageDiff(olds: ImageInputs, news: ImageInputs): string[] {
    const keys = new Set([...Object.keys(olds), ...Object.keys(news)]);
    return [...keys].filter((k) => {
        const [a, b] = [olds[k as keyof ImageInputs], news[k as keyof ImageInputs]];
        if (k === "registry")
            return (a as { server: string }).server !== (b as { server: string }).server;
        return JSON.stringify(a) !== JSON.stringify(b);
    });
}

/**
 * What the engine does with docker.Image in a run (pulumi/pulumi pkg/resource/deploy/
 * step_generator.go): `ignoreChanges` paths take their old values before the diff
 * (processIgnoreChanges); a changed key under a `replaceOnChanges` path makes it a replacement
 * (applyReplaceOnChanges, PropertyPath.Contains: the path must be a prefix of the key, so
 * "registry.server" does not cover the provider's "registry"); a replacement is created from the
 * program's inputs as given, ignoreChanges not applied (the Check without olds after
 * `sg.replaces[urn] = true`). Top-level paths only, as the program uses.
 */
export function imageStep(
    old: ImageInputs | undefined,
    news: ImageInputs,
    options: ImageOptions,
): { kind: "create" | "replace" | "update" | "same"; inputs: ImageInputs } {
    if (!old) return { kind: "create", inputs: news };
    const processed = { ...news } as Record<string, unknown>;
    for (const path of options.ignoreChanges) {
        if (path in old) processed[path] = old[path as keyof ImageInputs];
    }
    const changed = dockerImageDiff(old, processed as unknown as ImageInputs);
    if (changed.length === 0) return { kind: "same", inputs: old };
    const contains = (path: string, key: string) => key === path || key.startsWith(`${path}.`);
    if (changed.some((k) => options.replaceOnChanges.some((p) => contains(p, k)))) {
        return { kind: "replace", inputs: news };
    }
    return { kind: "update", inputs: processed as unknown as ImageInputs };
}

/** How a run's push goes wrong, to model a killed or failing CI job. */
export type PushFault =
    /** The push fails before anything reaches the registry (network down). */
    | "before-push"
    /** The push lands, then the job is killed before the engine records the image. */
    | "after-push";

/** What a run of `up` is given. */
export interface Run {
    readonly version: string;
    readonly context: string;
    readonly fault?: PushFault;
    /** The stack's `acknowledgedTampering` config. */
    readonly acknowledged?: Record<string, string>;
    /** Runs after the guard passed and before docker.Image builds and pushes (a slow builder). */
    readonly beforePush?: () => Promise<void>;
}

export interface RunResult {
    /** What the program's outputs would show: `<repositoryUri>@<digest>` from the record. */
    readonly imageRef: string;
    /** True when this run pushed the tag (docker push ran). */
    readonly pushed: boolean;
    /** True when the version's image resource was created in this run. */
    readonly imageCreated: boolean;
}

export class GuardRefused extends Error {}

export interface StackOptions {
    readonly registry: LocalRegistry;
    readonly repository: string;
    readonly publisher: string;
    readonly platform?: string;
    /** The registry target's `recordKey` (a local registry's volume). */
    readonly recordKey?: string;
    /** docker.Image's options; defaults to what components/modelImage.ts registers. */
    readonly imageOptions?: ImageOptions;
}

export interface Hosts {
    readonly guard: ProviderHost;
    readonly record: ProviderHost;
    readonly promotion: ProviderHost;
    readonly sourceCheck: ProviderHost;
    stop(): Promise<void>;
}

/** Serializes the four providers as `pulumi up` does (in one process) and starts a host for each. */
export async function startHosts(): Promise<Hosts> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "providers-"));
    const project = path.resolve(__dirname, "../..");
    const texts = await serializeProvidersAsPulumiUp(
        [
            ["components/tagGuard.ts", "tagGuardProvider"],
            ["components/publicationRecord.ts", "publicationRecordProvider"],
            ["components/promotedImage.ts", "imagePromotionProvider"],
            ["components/promotedImage.ts", "promotionSourceCheckProvider"],
        ],
        dir,
    );
    const [guard, record, promotion, sourceCheck] = await Promise.all(
        texts.map((text) => startDynamicProviderHost(project, text)),
    );
    return {
        guard,
        record,
        promotion,
        sourceCheck,
        async stop() {
            await guard.stop();
            await record.stop();
            await promotion.stop();
            await sourceCheck.stop();
            fs.rmSync(dir, { recursive: true, force: true });
        },
    };
}

/** Check, then Diff and Update, or Create, of one dynamic resource; `state` is kept. */
async function step(
    host: ProviderHost,
    state: ResourceState | undefined,
    news: object,
    refused: (message: string) => Error,
): Promise<ResourceState> {
    const checked = await host.check(state?.inputs ?? {}, news);
    if (checked.failures.length > 0)
        throw refused(checked.failures.map((f) => f.reason).join("\n"));
    if (!state) {
        const created = await host.create(checked.inputs).catch((e: Error) => {
            throw refused(e.message);
        });
        return { id: created.id, inputs: checked.inputs, outputs: created.properties };
    }
    const diff = await host.diff(state.id, state.outputs, checked.inputs);
    if (diff.changes !== "some") return { ...state, inputs: checked.inputs };
    const outputs = await host.update(state.id, state.outputs, checked.inputs).catch((e: Error) => {
        throw refused(e.message);
    });
    return { id: state.id, inputs: checked.inputs, outputs };
}

/** A stack's `repository_uri` and `published_versions`, as its self-reference reads them. */
export interface PromotingStackOutputs {
    readonly repositoryUri: string;
    readonly versions: Record<string, { fingerprint: string; digest: string }>;
}

/** A stack with `promoteFrom`: one ImagePromotion resource, run as the engine runs it. */
export class PromotingStack {
    private promotion?: ResourceState;
    private sourceCheck?: ResourceState;

    constructor(
        private readonly hosts: Hosts,
        private readonly opts: {
            readonly registry: LocalRegistry;
            readonly repository: string;
            readonly source: { readonly registry: LocalRegistry; readonly repository: string };
            readonly sourceName: string;
            /**
             * The source stack's published_versions output, as the StackReference reads it;
             * absent for a repository source.
             */
            readonly sourcePublished?: () => Record<string, { digest: string }> | undefined;
            /**
             * This stack's outputs before its first promoting run (it built before), as the
             * self-reference reads them; later runs read the promotion's own outputs.
             */
            readonly publishedBefore?: () => PromotingStackOutputs | undefined;
        },
    ) {}

    /** The stack's outputs after its last successful run (see SimulatedStack.lastOutputs). */
    private lastOutputs?: PromotingStackOutputs;

    get repositoryUri(): string {
        return `${this.opts.registry.host}/${this.opts.repository}`;
    }

    get outputs(): Record<string, unknown> | undefined {
        return this.promotion?.outputs;
    }

    /** `pulumi refresh`: Read on the promotion, with its old inputs and outputs. */
    async refresh(): Promise<void> {
        if (!this.promotion) return;
        const { id, inputs, outputs } = this.promotion;
        this.promotion = {
            id,
            inputs,
            outputs: await this.hosts.promotion.read(id, inputs, outputs),
        };
    }

    /** One `pulumi up` of `version`, with the stack's `acknowledgedTampering` config. */
    async up(
        version: string,
        acknowledged?: Record<string, string>,
    ): Promise<{ imageRef: string }> {
        const { registry, source } = this.opts;
        const news = {
            repositoryUri: this.repositoryUri,
            apiUrl: registry.apiUrl,
            repositoryPath: this.opts.repository,
            tag: version,
            platform: "linux/amd64",
            credentials: registry.credentials,
            caCertificate: registry.caCertificate,
            sourceName: this.opts.sourceName,
            sourceRepositoryUri: `${source.registry.host}/${source.repository}`,
            sourceApiUrl: source.registry.apiUrl,
            sourceRepositoryPath: source.repository,
            sourceCredentials: source.registry.credentials,
            sourceCaCertificate: source.registry.caCertificate,
            sourcePublished: this.opts.sourcePublished
                ? (this.opts.sourcePublished()?.[version]?.digest ?? "")
                : undefined,
            acknowledged,
            published: this.lastOutputs ?? this.opts.publishedBefore?.(),
        };
        // Registered first, and the repository depends on it: a refusal here creates nothing.
        this.sourceCheck = await step(
            this.hosts.sourceCheck,
            this.sourceCheck,
            {
                tag: version,
                sourceName: news.sourceName,
                sourceRepositoryUri: news.sourceRepositoryUri,
                sourceApiUrl: news.sourceApiUrl,
                sourceRepositoryPath: news.sourceRepositoryPath,
                sourceCredentials: news.sourceCredentials,
                sourceCaCertificate: news.sourceCaCertificate,
                sourcePublished: news.sourcePublished,
            },
            (m) => new GuardRefused(m),
        );
        this.promotion = await step(
            this.hosts.promotion,
            this.promotion,
            news,
            (m) => new GuardRefused(m),
        );
        this.lastOutputs = {
            repositoryUri: this.repositoryUri,
            versions: this.promotion.outputs.history as PromotingStackOutputs["versions"],
        };
        return { imageRef: `${this.repositoryUri}@${String(this.promotion.outputs.digest)}` };
    }
}

/** docker.Image's `build` input as the program gives it. */
function buildInputOf(spec: ModelBuildSpec): string {
    return JSON.stringify({
        context: spec.context,
        dockerfile: spec.dockerfile,
        platform: spec.platform,
        args: spec.args,
    });
}

/** One stack: its state survives between `up` calls, as the engine's checkpoint does. */
export class SimulatedStack {
    private guard?: ResourceState;
    private record?: ResourceState;
    private readonly images = new Map<string, ImageState>();
    /**
     * The stack's outputs after its last successful run, as a StackReference to the stack reads
     * them: the checkpoint's root stack outputs (pulumi/pulumi pkg/backend/backend.go,
     * GetStackOutputs -> SnapshotStackOutputs), which a later run keeps until it registers new
     * ones (pkg/resource/deploy/step.go, SameStep.Apply: `s.new.Outputs = s.old.Outputs`).
     */
    private lastOutputs?: {
        repository_uri: string;
        published_versions: Record<string, unknown>;
    };
    /** docker push commands run by this stack, in order (`<version>`). */
    public readonly pushes: string[] = [];
    /** The registry's address now (`pulumi config set localRegistryPort` changes it). */
    private address: { host: string; apiUrl: string };
    /** The repository the stack publishes to now (`pulumi config set repositoryName`). */
    private repository: string;

    constructor(
        private readonly hosts: Hosts,
        private readonly opts: StackOptions,
    ) {
        this.address = { host: opts.registry.host, apiUrl: opts.registry.apiUrl };
        this.repository = opts.repository;
    }

    get repositoryUri(): string {
        return `${this.address.host}/${this.repository}`;
    }

    /** The next runs publish to another repository of the same registry. */
    switchTo(repository: string): void {
        this.repository = repository;
    }

    /** The next runs reach the same registry at another address (e.g. another port). */
    moveTo(host: string, apiUrl: string): void {
        this.address = { host, apiUrl };
    }

    /** The recorded history (the record's outputs), as `published_versions` would show it. */
    get history(): Record<string, { fingerprint: string; digest: string }> {
        return (this.record?.outputs.history ?? {}) as Record<
            string,
            { fingerprint: string; digest: string }
        >;
    }

    async up(run: Run): Promise<RunResult> {
        const spec = await modelBuildSpec({
            context: run.context,
            version: run.version,
            platform: this.opts.platform ?? "linux/amd64",
            publisher: this.opts.publisher,
        });
        const registryInputs: RegistryInputs = {
            repositoryUri: this.repositoryUri,
            apiUrl: this.address.apiUrl,
            repositoryPath: this.repository,
            tag: run.version,
            fingerprint: spec.fingerprint,
            platform: spec.platform,
            credentials: this.opts.registry.credentials,
            caCertificate: this.opts.registry.caCertificate,
            ...(this.opts.recordKey ? { recordKey: this.opts.recordKey } : {}),
        };

        // 1. The guard: Check, then Diff and Update, or Create.
        const guardNews = {
            ...registryInputs,
            publisher: this.opts.publisher,
            published: this.lastOutputs && {
                repositoryUri: this.lastOutputs.repository_uri,
                versions: this.lastOutputs.published_versions,
            },
            acknowledged: run.acknowledged,
        };
        this.guard = await step(
            this.hosts.guard,
            this.guard,
            guardNews,
            (m) => new GuardRefused(m),
        );

        await run.beforePush?.();
        // 2. docker.Image for this version, as the engine steps it with the program's options.
        let pushed = false;
        let imageCreated = false;
        let image = this.images.get(run.version);
        const news: ImageInputs = {
            imageName: `${this.repositoryUri}:${run.version}`,
            build: buildInputOf(spec),
            registry: { server: this.address.host },
            // The program's skipPush: the guard found this tag holding this content.
            skipPush:
                this.guard.outputs.tag === run.version &&
                String(this.guard.outputs.verifiedDigest ?? "") !== "",
        };
        const next = imageStep(image?.inputs, news, this.opts.imageOptions ?? MODEL_IMAGE_OPTIONS);
        if (next.kind !== "same") {
            // Create, replace (the old one is retained: nothing is deleted) or update: docker
            // builds, and pushes unless skipPush.
            const push = !next.inputs.skipPush;
            const repoDigest = await this.buildAndPush(spec, run.version, push, run.fault);
            pushed = push;
            imageCreated = next.kind !== "update";
            image = { inputs: next.inputs, repoDigest };
        }
        image = image!;
        // A version bump drops the other versions' image resources (retained: a no-op).
        this.images.clear();
        this.images.set(run.version, image);

        // 3. The publication record.
        const recordNews = {
            ...registryInputs,
            repoDigest: image.repoDigest,
            acknowledged: run.acknowledged,
        };
        this.record = await step(this.hosts.record, this.record, recordNews, (m) => new Error(m));
        this.lastOutputs = {
            repository_uri: this.repositoryUri,
            published_versions: this.record.outputs.history as Record<string, unknown>,
        };
        return {
            imageRef: `${this.repositoryUri}@${String(this.record.outputs.digest)}`,
            pushed,
            imageCreated,
        };
    }

    /** `pulumi refresh`: Read on the record (the guard has no Read: it keeps its state). */
    async refresh(): Promise<void> {
        if (!this.record) return;
        const outputs = await this.hosts.record.read(
            this.record.id,
            this.record.inputs,
            this.record.outputs,
        );
        this.record = { ...this.record, outputs };
    }

    /**
     * What docker.Image does: build with the program's exact inputs (without the build cache, as
     * on a fresh CI machine, so a rebuild gives a new digest), then push unless skipped. Returns
     * the repoDigest docker.Image would report.
     */
    private async buildAndPush(
        spec: ModelBuildSpec,
        version: string,
        push: boolean,
        fault: PushFault | undefined,
    ): Promise<string> {
        const ref = `${this.repositoryUri}:${version}`;
        const args = ["build", "--no-cache", "--platform", spec.platform, "-f", spec.dockerfile];
        for (const [k, v] of Object.entries(spec.args)) args.push("--build-arg", `${k}=${v}`);
        args.push("-t", ref, "--progress", "plain", spec.context);
        await docker(args);
        const { stdout: id } = await docker(["image", "inspect", "--format", "{{.Id}}", ref]);
        if (!push) return id.trim();
        if (fault === "before-push") throw new Error(`push of ${ref} failed: connection reset`);
        const out = await docker(["push", ref]);
        this.pushes.push(version);
        if (fault === "after-push") throw new Error(`job killed after pushing ${ref}`);
        const digest = /digest: (sha256:[0-9a-f]{64})/.exec(out.stdout)?.[1];
        if (!digest) throw new Error(`docker push printed no digest:\n${out.stdout}`);
        return `${this.repositoryUri}@${digest}`;
    }
}
