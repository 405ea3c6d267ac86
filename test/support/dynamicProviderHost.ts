/**
 * The Pulumi SDK's own dynamic provider host (`@pulumi/pulumi/cmd/dynamic-provider`), driven over
 * gRPC the way the engine drives it: each request carries the serialized provider in
 * `__provider`, which the host loads with `require-from-string`; unknown values travel as the
 * engine's sentinel string. Also: serializing a provider the way `pulumi up` does.
 */
// The SDK's gRPC and protobuf modules are loaded from its own location, with require.
/* eslint-disable @typescript-eslint/no-require-imports */
import { ChildProcess, execFile, spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";

const SDK = path.dirname(require.resolve("@pulumi/pulumi/package.json"));
/** The SDK's own gRPC and protobuf libraries, so the wire format is exactly the engine's. */
const grpc = require(require.resolve("@grpc/grpc-js", { paths: [SDK] }));
const { Struct } = require(
    require.resolve("google-protobuf/google/protobuf/struct_pb", { paths: [SDK] }),
);
const provrpc = require(path.join(SDK, "proto/provider_grpc_pb"));
const provproto = require(path.join(SDK, "proto/provider_pb"));

const PROJECT = path.resolve(__dirname, "../..");

/**
 * Serializes `export const <exportName>` of a project module with `serializeFunction(() => x)`,
 * as `pulumi.dynamic.Resource` does, in a plain Node process that loads the code with ts-node
 * from a script file, as `pulumi up` does. Not inside jest (its globals differ) and not with
 * `node -e` (the serializer then drops built-in modules and `exports` from the closure).
 */
export async function serializeProviderAsPulumiUp(
    modulePath: string,
    exportName: string,
    dir: string,
): Promise<string> {
    return (await serializeProvidersAsPulumiUp([[modulePath, exportName]], dir))[0];
}

/** serializeProviderAsPulumiUp of several providers in one process (ts-node, SDK loaded once). */
export async function serializeProvidersAsPulumiUp(
    providers: readonly (readonly [modulePath: string, exportName: string])[],
    dir: string,
): Promise<string[]> {
    const script = path.join(dir, "serialize.js");
    const jobs = providers.map(([m, e], i) => [
        path.join(PROJECT, m),
        e,
        path.join(dir, `provider${i}.js`),
    ]);
    fs.writeFileSync(
        script,
        `require(${JSON.stringify(require.resolve("ts-node"))}).register({ transpileOnly: true, project: ${JSON.stringify(path.join(PROJECT, "tsconfig.json"))} });
         const pulumi = require(${JSON.stringify(require.resolve("@pulumi/pulumi"))});
         (async () => {
             for (const [module, name, out] of ${JSON.stringify(jobs)}) {
                 const provider = require(module)[name];
                 const s = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
                 require("fs").writeFileSync(out, s.text);
             }
         })();`,
    );
    await new Promise<void>((resolve, reject) =>
        execFile(process.execPath, [script], { cwd: PROJECT }, (err, _out, stderr) =>
            err ? reject(new Error(`serializing the provider failed: ${stderr}`)) : resolve(),
        ),
    );
    fs.rmSync(script);
    return jobs.map(([, , out]) => fs.readFileSync(out, "utf8"));
}

interface CheckFailure {
    readonly property: string;
    readonly reason: string;
}

export interface ProviderHost {
    check(
        olds: object,
        news: object,
    ): Promise<{ inputs: Record<string, unknown>; failures: CheckFailure[] }>;
    diff(
        id: string,
        olds: object,
        news: object,
    ): Promise<{ changes: "none" | "some" | "unknown"; replaces: string[] }>;
    create(properties: object): Promise<{ id: string; properties: Record<string, unknown> }>;
    update(id: string, olds: object, news: object): Promise<Record<string, unknown>>;
    /**
     * Read, as `pulumi refresh` sends it: the old inputs and the old outputs (pulumi/pulumi
     * pkg/resource/deploy/step.go, RefreshStep.Apply: `Inputs: s.old.Inputs, State:
     * s.old.Outputs`); the engine then keeps the outputs it answers.
     */
    read(id: string, inputs: object, state: object): Promise<Record<string, unknown>>;
    stop(): Promise<void>;
}

const URN =
    "urn:pulumi:test::model-registry::model-registry:index:ModelImage$pulumi-nodejs:dynamic/model-registry:TagGuard::model-guard";

/** Starts the SDK's dynamic provider host in `cwd` and connects to it. */
export async function startDynamicProviderHost(
    cwd: string,
    providerText: string,
): Promise<ProviderHost> {
    const child: ChildProcess = spawn(
        process.execPath,
        [path.join(SDK, "cmd/dynamic-provider/index.js"), "127.0.0.1:1"],
        {
            cwd,
            stdio: ["ignore", "pipe", "pipe"],
        },
    );
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    const port = await new Promise<string>((resolve, reject) => {
        let out = "";
        child.stdout?.on("data", (d: Buffer) => {
            out += d.toString();
            const line = out.split("\n")[0].trim();
            if (/^\d+$/.test(line) && out.includes("\n")) resolve(line);
        });
        child.on("exit", (code) =>
            reject(new Error(`dynamic provider host exited (${code}): ${stderr}`)),
        );
    });
    const client = new provrpc.ResourceProviderClient(
        `127.0.0.1:${port}`,
        grpc.credentials.createInsecure(),
    );
    // The engine leaves undefined properties out of the wire struct, and so does this.
    const struct = (props: object) => Struct.fromJavaScript(JSON.parse(JSON.stringify(props)));
    const withProvider = (props: object) => struct({ ...props, __provider: providerText });
    /** A Diff or Update request: the same id, URN, old and new properties. */
    const change = (req: any, id: string, olds: object, news: object) => {
        req.setId(id);
        req.setUrn(URN);
        req.setOlds(withProvider(olds));
        req.setNews(withProvider(news));
        return req;
    };
    const call = <T>(method: string, req: unknown): Promise<T> =>
        new Promise((resolve, reject) =>
            client[method](req, (err: Error | null, res: T) =>
                err ? reject(new Error(`${method}: ${err.message}`)) : resolve(res),
            ),
        );

    return {
        async check(olds, news) {
            const req = new provproto.CheckRequest();
            req.setUrn(URN);
            req.setOlds(struct(olds));
            req.setNews(withProvider(news));
            const res: any = await call("check", req);
            return {
                inputs: res.getInputs().toJavaScript(),
                failures: res
                    .getFailuresList()
                    .map((f: any) => ({ property: f.getProperty(), reason: f.getReason() })),
            };
        },
        async diff(id, olds, news) {
            const res: any = await call(
                "diff",
                change(new provproto.DiffRequest(), id, olds, news),
            );
            const kinds = provproto.DiffResponse.DiffChanges;
            const changes =
                res.getChanges() === kinds.DIFF_SOME
                    ? "some"
                    : res.getChanges() === kinds.DIFF_NONE
                      ? "none"
                      : "unknown";
            return { changes, replaces: res.getReplacesList() };
        },
        async create(properties) {
            const req = new provproto.CreateRequest();
            req.setUrn(URN);
            req.setProperties(withProvider(properties));
            const res: any = await call("create", req);
            return { id: res.getId(), properties: res.getProperties().toJavaScript() };
        },
        async update(id, olds, news) {
            const res: any = await call(
                "update",
                change(new provproto.UpdateRequest(), id, olds, news),
            );
            return res.getProperties().toJavaScript();
        },
        async read(id, inputs, state) {
            const req = new provproto.ReadRequest();
            req.setId(id);
            req.setUrn(URN);
            req.setInputs(withProvider(inputs));
            req.setProperties(withProvider(state));
            const res: any = await call("read", req);
            return res.getProperties().toJavaScript();
        },
        async stop() {
            client.close();
            if (child.exitCode === null) {
                const exited = new Promise((r) => child.once("exit", r));
                child.kill("SIGTERM");
                await exited;
            }
        },
    };
}
