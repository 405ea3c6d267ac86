/**
 * The registry a local stack runs refuses anonymous access (issue 15, item 6): its login is a
 * generated password, a secret, which the guard, the push and the record use, and its htpasswd
 * file is what CNCF distribution accepts. The container settings are taken from what the
 * component registers (under mocks), and a real distribution registry is started with exactly
 * those settings: no registry:2 image can be pulled here, so the container itself does not run.
 */
import * as bcrypt from "bcryptjs";
import { ChildProcess, execFile, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as c from "../components";
import { RegistryLogin, registryLoginProvider } from "../components/registryLogin";
import {
    serializeProviderAsPulumiUp,
    startDynamicProviderHost,
} from "./support/dynamicProviderHost";
import { runProgram, stackFile } from "./support/program";
import { freePort, requireRegistryBinary } from "./support/registry";
import { CONTAINER, GUARD, IMAGE, LOGIN, RECORD } from "./support/pulumiMocks";

jest.setTimeout(60_000);

interface Registered {
    type: string;
    name: string;
    inputs: Record<string, any>;
}

/**
 * The local registry component and a model image on it, under mocks in which the login's own
 * provider makes the password (as `pulumi up` would run it) and every other resource echoes its
 * inputs.
 */
async function registerLocal(registryUrl?: string) {
    const registered: Registered[] = [];
    await pulumi.runtime.setMocks(
        {
            newResource: async (args) => {
                registered.push({ type: args.type, name: args.name, inputs: args.inputs });
                let state: Record<string, any> = args.inputs;
                if (args.type === LOGIN) state = (await registryLoginProvider.create!(state)).outs;
                if (args.type === IMAGE)
                    state = { ...state, repoDigest: `x@sha256:${"1".repeat(64)}` };
                // This stack, never deployed before.
                if (args.type === "pulumi:pulumi:StackReference")
                    state = { ...state, outputs: {}, secretOutputNames: [] };
                return { id: `${args.name}-id`, state };
            },
            call: () => ({}),
        },
        "model-registry",
        "local",
        false,
        "organization",
    );
    const local = new c.LocalModelRegistry("model", {
        repositoryName: "model-registry-local",
        registryUrl,
        credentials: registryUrl ? { username: "own", password: "own-password" } : undefined,
    });
    new c.ModelImage("model", { registry: local.registry, version: "1.0.0", context: "model" });
    const credentials = local.credentials
        ? await new Promise<unknown>((resolve) => local.credentials!.apply(resolve))
        : undefined;
    const secret = local.credentials ? await pulumi.isSecret(local.credentials) : undefined;
    // What `pulumi up` waits on before it disconnects (internal to the SDK, not in its typings).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const settings = require("@pulumi/pulumi/runtime/settings") as {
        waitForRPCs(): Promise<void>;
    };
    await settings.waitForRPCs();
    const one = (type: string) => {
        const found = registered.filter((r) => r.type === type);
        if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}`);
        return found[0].inputs;
    };
    return { registered, one, credentials, secret };
}

/** A distribution registry started with the container's environment and uploaded files. */
async function registryAsContainer(container: Record<string, any>) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "local-registry-auth-"));
    const port = await freePort();
    const files = new Map<string, string>();
    for (const upload of container.uploads as { file: string; content: string }[]) {
        const file = path.join(dir, path.basename(upload.file));
        fs.writeFileSync(file, upload.content);
        files.set(upload.file, file);
    }
    const env: Record<string, string> = {};
    for (const entry of container.envs as string[]) {
        const [key, value] = [
            entry.slice(0, entry.indexOf("=")),
            entry.slice(entry.indexOf("=") + 1),
        ];
        env[key] = files.get(value) ?? value;
    }
    fs.writeFileSync(
        path.join(dir, "config.yml"),
        [
            "version: 0.1",
            "log:",
            "  level: error",
            "storage:",
            "  filesystem:",
            `    rootdirectory: ${dir}/data`,
            "http:",
            `  addr: 127.0.0.1:${port}`,
            "",
        ].join("\n"),
    );
    const child: ChildProcess = spawn(requireRegistryBinary(), ["serve", `${dir}/config.yml`], {
        env: { ...process.env, ...env },
        stdio: "ignore",
    });
    const url = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
        if ((await fetch(`${url}/`).catch(() => undefined))?.status === 200) break;
        if (i > 100) throw new Error("the registry did not start");
        await new Promise((r) => setTimeout(r, 100));
    }
    return {
        url,
        env,
        async stop() {
            const exited = new Promise((r) => child.once("exit", r));
            child.kill("SIGTERM");
            await exited;
            fs.rmSync(dir, { recursive: true, force: true });
        },
    };
}

/** A secret value as the engine receives it (the SDK's specialSigKey and specialSecretSig). */
const secret = (value: unknown) => ({
    "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
    value,
});

const basic = (user: string, password: string) =>
    `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

/** Starts a blob upload in `repository`, the first request of every push. */
async function startUpload(url: string, authorization?: string): Promise<number> {
    const res = await fetch(`${url}/v2/model-registry-local/blobs/uploads/`, {
        method: "POST",
        headers: authorization ? { authorization } : {},
    });
    return res.status;
}

describe("the registry a local stack runs", () => {
    let run: Awaited<ReturnType<typeof registerLocal>>;
    beforeAll(async () => {
        run = await registerLocal();
    });

    it("has a generated password, a secret, and the container its bcrypt htpasswd line", () => {
        const login = run.one(LOGIN);
        expect(login.username).toBe("model-registry");
        const creds = run.credentials as { username: string; password: string };
        expect(creds.username).toBe("model-registry");
        expect(creds.password).toMatch(/^[A-Za-z0-9_-]{32}$/);
        expect(run.secret).toBe(true);

        const container = run.one(CONTAINER);
        expect(container.envs).toEqual(
            expect.arrayContaining([
                "REGISTRY_AUTH=htpasswd",
                "REGISTRY_AUTH_HTPASSWD_PATH=/etc/docker/registry/htpasswd",
                "REGISTRY_STORAGE_DELETE_ENABLED=false",
            ]),
        );
        const [upload] = container.uploads;
        expect(upload.file).toBe("/etc/docker/registry/htpasswd");
        const [user, hash] = upload.content.trim().split(":");
        expect(user).toBe("model-registry");
        expect(bcrypt.compareSync(creds.password, hash)).toBe(true);
        // No password in the container's settings, only its hash.
        expect(JSON.stringify(container)).not.toContain(creds.password);
    });

    it("gives the guard, the push and the record that login as the registry's credentials", () => {
        const creds = run.credentials as { username: string; password: string };
        expect(run.one(GUARD).credentials).toEqual(secret(creds));
        expect(run.one(RECORD).credentials).toEqual(secret(creds));
        // (The mock's deserializer marks the whole block secret when its password is.)
        expect(run.one(IMAGE).registry).toEqual(secret({ server: "127.0.0.1:5000", ...creds }));
    });

    it("is healthy only once /v2/ asks for credentials", () => {
        const tests = run.one(CONTAINER).healthcheck.tests as string[];
        expect(tests[0]).toBe("CMD-SHELL");
        expect(tests[1]).toContain("http://127.0.0.1:5000/v2/");
    });

    describe("started as the container would be (a real distribution registry)", () => {
        let registry: Awaited<ReturnType<typeof registryAsContainer>>;
        beforeAll(async () => {
            registry = await registryAsContainer(run.one(CONTAINER));
        });
        afterAll(async () => registry?.stop());

        it("refuses anonymous writes and reads, and a wrong password", async () => {
            expect(await startUpload(registry.url)).toBe(401);
            expect((await fetch(`${registry.url}/v2/`)).status).toBe(401);
            expect((await fetch(`${registry.url}/v2/model-registry-local/tags/list`)).status).toBe(
                401,
            );
            expect(await startUpload(registry.url, basic("model-registry", "guess"))).toBe(401);
        });

        it("takes the generated login", async () => {
            const { username, password } = run.credentials as Record<string, string>;
            expect(await startUpload(registry.url, basic(username, password))).toBe(202);
        });

        it("passes its health check; an anonymous registry does not", async () => {
            const check = (run.one(CONTAINER).healthcheck.tests as string[])[1];
            const sh = (url: string) =>
                new Promise<number>((resolve) =>
                    execFile("sh", ["-c", check.replace("http://127.0.0.1:5000", url)], (err) =>
                        resolve(err ? Number(err.code ?? 1) : 0),
                    ),
                );
            expect(await sh(registry.url)).toBe(0);
            const anonymous = await registryAsContainer({
                envs: ["REGISTRY_STORAGE_DELETE_ENABLED=false"],
                uploads: [],
            });
            try {
                expect(await sh(anonymous.url)).not.toBe(0);
            } finally {
                await anonymous.stop();
            }
        });
    });

    it("uses the user's credentials, and makes no login, for a registry the user runs", async () => {
        const own = await registerLocal("http://127.0.0.1:5055");
        expect(own.registered.map((r) => r.type)).not.toContain(LOGIN);
        expect(own.registered.map((r) => r.type)).not.toContain(CONTAINER);
        expect(own.credentials).toBeUndefined();
        expect(own.one(GUARD).credentials).toEqual(
            secret({ username: "own", password: "own-password" }),
        );
    });
});

describe("the login's inputs", () => {
    it("are the user name alone, whatever else the args object holds", async () => {
        const registered: Record<string, unknown>[] = [];
        await pulumi.runtime.setMocks(
            {
                newResource: async (args) => {
                    if (args.type === LOGIN) registered.push(args.inputs);
                    return { id: `${args.name}-id`, state: args.inputs };
                },
                call: () => ({}),
            },
            "model-registry",
            "local",
            false,
        );
        const args = {
            username: "u",
            credentials: { username: "admin", password: "PW" },
            note: "x",
        };
        const login = new RegistryLogin("login", args);
        await new Promise((resolve) => login.urn.apply(resolve));
        const keys = registered.map((inputs) => Object.keys(inputs).sort());
        expect(keys).toEqual([["__provider", "username"]]);
    });
});

describe("the program", () => {
    it("exports the login as the secret output registry_login, on the local stack only", async () => {
        const local = await runProgram(stackFile("local"), { stack: "local" });
        expect(local.error).toBeUndefined();
        const login = local.outputs.registry_login;
        expect(await local.pulumi.isSecret(login)).toBe(true);
        // (Under the suite's mocks the login's provider does not run: no password here.)
        expect(await new Promise((resolve) => login.apply(resolve))).toMatchObject({
            username: "model-registry",
        });
        const dev = await runProgram(stackFile("dev"), { stack: "dev" });
        expect(dev.error).toBeUndefined();
        expect(dev.outputs.registry_login).toBeUndefined();
    });
});

describe("the login's provider, serialized as pulumi up does", () => {
    let dir: string;
    let host: Awaited<ReturnType<typeof startDynamicProviderHost>>;
    beforeAll(async () => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "registry-login-"));
        const text = await serializeProviderAsPulumiUp(
            "components/registryLogin.ts",
            "registryLoginProvider",
            dir,
        );
        host = await startDynamicProviderHost(path.resolve(__dirname, ".."), text);
    });
    afterAll(async () => {
        await host?.stop();
        fs.rmSync(dir, { recursive: true, force: true });
    });

    it("makes a password and its htpasswd line in the SDK's provider host", async () => {
        const { properties } = await host.create({ username: "model-registry" });
        const { username, password, htpasswd } = properties as Record<string, string>;
        expect(username).toBe("model-registry");
        expect(password).toMatch(/^[A-Za-z0-9_-]{32}$/);
        expect(bcrypt.compareSync(password, htpasswd.trim().split(":")[1])).toBe(true);
    });

    it("keeps the password from run to run; rotating is a replacement, with a new one", async () => {
        const olds = { username: "model-registry" };
        expect(await host.diff("model-registry", olds, olds)).toEqual({
            changes: "none",
            replaces: [],
        });
        expect(await host.diff("model-registry", olds, { username: "other" })).toEqual({
            changes: "some",
            replaces: ["username"],
        });
        // `pulumi up --replace <urn>` creates the login again.
        const first = (await host.create(olds)).properties.password;
        const second = (await host.create(olds)).properties.password;
        expect(second).not.toBe(first);
    });
});
