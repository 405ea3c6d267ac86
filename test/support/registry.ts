/**
 * Real OCI registries for tests: CNCF distribution's registry server (Debian's `docker-registry`,
 * distribution 2.8; REGISTRY_BIN, or `docker-registry` or `registry` on PATH) on 127.0.0.1,
 * storage in a temp dir, optionally behind TLS with a self-signed certificate, with htpasswd
 * (Basic) auth, or with a Bearer token realm served by the test itself.
 */
import { ChildProcess, execFileSync, spawn } from "child_process";
import { createHash, createSign, randomBytes, X509Certificate } from "crypto";
import * as fs from "fs";
import * as http from "http";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import {
    RegistryEndpoint,
    closeSession,
    findManifest,
    openSession,
    sessionRequest,
} from "../../lib/oci/client";
import { tool } from "./tools";

export interface LocalRegistry {
    /** `http://127.0.0.1:<port>` or `https://127.0.0.1:<port>`. */
    readonly apiUrl: string;
    /** `127.0.0.1:<port>`: the registry server as Docker names it. */
    readonly host: string;
    /** PEM of the self-signed certificate, when the registry speaks TLS. */
    readonly caCertificate?: string;
    /** Credentials that the registry (or its token realm) accepts, when it has auth. */
    readonly credentials?: { username: string; password: string };
    /**
     * The credentials as a containers auth file (mode 0600, in the registry's mktemp directory),
     * for skopeo's `--authfile`, so that no password goes on its command line.
     */
    readonly authFile?: string;
    /** Where the registry keeps its data; `blobs()` lists what it holds. */
    readonly storageDir: string;
    /** Token requests the realm answered (Bearer registries only). */
    readonly tokenRequests: string[];
    /** An endpoint for one repository of this registry. */
    endpoint(repository: string, overrides?: Partial<RegistryEndpoint>): RegistryEndpoint;
    stop(): Promise<void>;
}

export interface RegistryOptions {
    /** Port to listen on. Defaults to a free one. */
    readonly port?: number;
    readonly tls?: boolean;
    readonly auth?: "htpasswd" | "token";
}

/**
 * One request as the client sends it (authenticated, redirects followed, an expired Bearer
 * token renewed once), in a session of its own: the fixtures' way to push, fetch and delete.
 * Not a check of the client's refusals.
 */
export async function authorizedRequest(
    endpoint: RegistryEndpoint,
    method: string,
    path: string,
    headers: Record<string, string>,
    action: "pull" | "push,pull",
    body?: Buffer,
) {
    const session = openSession(endpoint, action);
    try {
        return await sessionRequest(session, method, path, headers, { body });
    } finally {
        await closeSession(session);
    }
}

/** `reference`'s manifest exactly as stored, verified; undefined when the registry has none. */
export async function getManifest(endpoint: RegistryEndpoint, reference: string) {
    const session = openSession(endpoint);
    try {
        const found = await findManifest(session, reference, true);
        return found?.body ? { ...found, body: found.body } : undefined;
    } finally {
        await closeSession(session);
    }
}

/**
 * The registry server's executable. Throws, with the install hint, when there is none: these
 * tests are never skipped.
 */
export function requireRegistryBinary(): string {
    return tool("registry");
}

export async function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.on("error", reject);
        server.listen(0, "127.0.0.1", () => {
            const { port } = server.address() as net.AddressInfo;
            server.close(() => resolve(port));
        });
    });
}

/** A self-signed certificate (and key) in `dir` for `127.0.0.1` and the given DNS names. */
export function selfSignedCertificate(
    dir: string,
    name: string,
    dnsNames: string[] = [],
): { cert: string; key: string; certPath: string; keyPath: string } {
    const certPath = path.join(dir, `${name}.crt`);
    const keyPath = path.join(dir, `${name}.key`);
    execFileSync(
        tool("openssl"),
        [
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            keyPath,
            "-out",
            certPath,
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            `subjectAltName=${["IP:127.0.0.1", ...dnsNames.map((n) => `DNS:${n}`)].join(",")}`,
        ],
        { stdio: "ignore" },
    );
    return {
        cert: fs.readFileSync(certPath, "utf8"),
        key: fs.readFileSync(keyPath, "utf8"),
        certPath,
        keyPath,
    };
}

function base64url(data: Buffer | string): string {
    return Buffer.from(data).toString("base64url");
}

/**
 * A token realm, as in the Docker token auth spec: Basic credentials in, a JWT signed with a key
 * whose certificate the registry trusts (`rootcertbundle`) out, granting the requested scope.
 */
async function startTokenRealm(
    dir: string,
    credentials: { username: string; password: string },
    requests: string[],
) {
    const { cert, key, certPath } = selfSignedCertificate(dir, "token-signer");
    const der = new X509Certificate(cert).raw;
    const port = await freePort();
    const server = http.createServer((req, res) => {
        const url = new URL(req.url ?? "/", `http://127.0.0.1:${port}`);
        requests.push(url.search);
        const expected = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString("base64")}`;
        if (req.headers.authorization !== expected) {
            res.writeHead(401, { "Content-Type": "application/json" }).end(
                '{"details":"bad credentials"}',
            );
            return;
        }
        const access = (url.searchParams.getAll("scope") ?? [])
            .map((s) => s.split(":"))
            .filter((p) => p.length === 3 && p[0] === "repository")
            .map(([type, name, actions]) => ({ type, name, actions: actions.split(",") }));
        const now = Math.floor(Date.now() / 1000);
        const header = { typ: "JWT", alg: "RS256", x5c: [der.toString("base64")] };
        const claims = {
            iss: "model-registry-tests",
            sub: credentials.username,
            aud: url.searchParams.get("service"),
            exp: now + 300,
            nbf: now - 10,
            iat: now,
            jti: randomBytes(8).toString("hex"),
            access,
        };
        const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
        const signature = createSign("RSA-SHA256").update(signingInput).sign(key);
        const token = `${signingInput}.${base64url(signature)}`;
        res.writeHead(200, { "Content-Type": "application/json" }).end(
            JSON.stringify({ token, expires_in: 300 }),
        );
    });
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    return {
        realm: `http://127.0.0.1:${port}/token`,
        certPath,
        close: () => new Promise<void>((r) => server.close(() => r())),
    };
}

/** Starts a registry and waits until it answers `/v2/`. */
export async function startRegistry(opts: RegistryOptions = {}): Promise<LocalRegistry> {
    const binary = requireRegistryBinary();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "registry-"));
    const port = opts.port ?? (await freePort());
    const host = `127.0.0.1:${port}`;
    const credentials = opts.auth
        ? { username: "publisher", password: randomBytes(9).toString("base64url") }
        : undefined;
    const tokenRequests: string[] = [];
    const lines = [
        "version: 0.1",
        "log:",
        "  level: error",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        `    rootdirectory: ${dir}/data`,
        "  delete:",
        "    enabled: true",
        "http:",
        `  addr: ${host}`,
        `  secret: ${randomBytes(16).toString("hex")}`,
    ];
    let caCertificate: string | undefined;
    if (opts.tls) {
        const tls = selfSignedCertificate(dir, "registry");
        caCertificate = tls.cert;
        lines.push("  tls:", `    certificate: ${tls.certPath}`, `    key: ${tls.keyPath}`);
    }
    let closeRealm: (() => Promise<void>) | undefined;
    if (opts.auth === "htpasswd" && credentials) {
        // The password goes on stdin (-i), never on argv, where any local user could read it.
        const htpasswd = execFileSync(tool("htpasswd"), ["-Bin", credentials.username], {
            encoding: "utf8",
            input: credentials.password,
        });
        fs.writeFileSync(path.join(dir, "htpasswd"), htpasswd);
        lines.push(
            "auth:",
            "  htpasswd:",
            "    realm: model-registry-tests",
            `    path: ${dir}/htpasswd`,
        );
    } else if (opts.auth === "token" && credentials) {
        const realm = await startTokenRealm(dir, credentials, tokenRequests);
        closeRealm = realm.close;
        lines.push(
            "auth:",
            "  token:",
            `    realm: ${realm.realm}`,
            "    service: model-registry-tests-registry",
            "    issuer: model-registry-tests",
            `    rootcertbundle: ${realm.certPath}`,
        );
    }
    fs.writeFileSync(path.join(dir, "config.yml"), `${lines.join("\n")}\n`);
    const authFile = credentials && path.join(dir, "auth.json");
    if (authFile && credentials) {
        const auth = Buffer.from(`${credentials.username}:${credentials.password}`);
        const json = { auths: { [host]: { auth: auth.toString("base64") } } };
        fs.writeFileSync(authFile, JSON.stringify(json), { mode: 0o600 });
    }

    const child: ChildProcess = spawn(binary, ["serve", path.join(dir, "config.yml")], {
        stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    const apiUrl = `${opts.tls ? "https" : "http"}://${host}`;
    const endpoint = (
        repository: string,
        overrides: Partial<RegistryEndpoint> = {},
    ): RegistryEndpoint => ({
        apiUrl,
        repository,
        credentials,
        caCertificate,
        timeoutMs: 5000,
        retries: 1,
        ...overrides,
    });

    // Ready when /v2/ answers at all (200, or 401 when it has auth).
    const deadline = Date.now() + 15_000;
    for (;;) {
        if (child.exitCode !== null)
            throw new Error(`docker-registry exited (${child.exitCode}): ${stderr}`);
        try {
            const res = await authorizedRequest(
                endpoint("probe", { retries: 0, timeoutMs: 1000 }),
                "GET",
                "/v2/",
                {},
                "pull",
            );
            if (res.status === 200) break;
        } catch {
            // not listening yet
        }
        if (Date.now() > deadline) {
            child.kill("SIGKILL");
            throw new Error(`docker-registry did not come up on ${host}: ${stderr}`);
        }
        await new Promise((r) => setTimeout(r, 100));
    }

    return {
        apiUrl,
        host,
        caCertificate,
        credentials,
        authFile,
        tokenRequests,
        storageDir: path.join(dir, "data"),
        endpoint,
        async stop() {
            if (child.exitCode === null) {
                const exited = new Promise((r) => child.once("exit", r));
                child.kill("SIGTERM");
                await exited;
            }
            await closeRealm?.();
            fs.rmSync(dir, { recursive: true, force: true });
        },
    };
}

/** An image manifest as the registry serves it (Docker v2 or OCI). */
export interface ImageManifest {
    readonly config: { readonly digest: string; readonly size: number };
    readonly layers: readonly { readonly digest: string; readonly size: number }[];
}

export async function fetchManifest(
    endpoint: RegistryEndpoint,
    tag: string,
): Promise<ImageManifest> {
    const res = await authorizedRequest(
        endpoint,
        "GET",
        `/v2/${endpoint.repository}/manifests/${tag}`,
        {
            Accept: "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
        },
        "pull",
    );
    if (res.status !== 200) throw new Error(`GET manifest ${tag} answered ${res.status}`);
    return JSON.parse(res.body.toString("utf8")) as ImageManifest;
}

/** Every blob the registry stores (layers, configs and manifests), by digest, with its size. */
export function storedBlobs(registry: LocalRegistry): Map<string, number> {
    const root = path.join(registry.storageDir, "docker/registry/v2/blobs/sha256");
    const blobs = new Map<string, number>();
    if (!fs.existsSync(root)) return blobs;
    for (const prefix of fs.readdirSync(root)) {
        for (const hex of fs.readdirSync(path.join(root, prefix))) {
            const data = path.join(root, prefix, hex, "data");
            if (fs.existsSync(data)) blobs.set(`sha256:${hex}`, fs.statSync(data).size);
        }
    }
    return blobs;
}

function sha256(data: Buffer): string {
    return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** Uploads a blob with a monolithic upload; returns its digest. */
export async function pushBlob(endpoint: RegistryEndpoint, data: Buffer): Promise<string> {
    const digest = sha256(data);
    const start = await authorizedRequest(
        endpoint,
        "POST",
        `/v2/${endpoint.repository}/blobs/uploads/`,
        {},
        "push,pull",
    );
    if (start.status !== 202)
        throw new Error(`blob upload start answered ${start.status}: ${start.body}`);
    const location = new URL(String(start.headers.location), endpoint.apiUrl);
    location.searchParams.set("digest", digest);
    const put = await authorizedRequest(
        endpoint,
        "PUT",
        `${location.pathname}${location.search}`,
        { "Content-Type": "application/octet-stream" },
        "push,pull",
        data,
    );
    if (put.status !== 201) throw new Error(`blob upload answered ${put.status}: ${put.body}`);
    return digest;
}

/**
 * Publishes a small OCI image under `tag` through the registry API: one layer and a config whose
 * content depends on `seed` (its only label). Returns the manifest digest the registry reports.
 */
export async function pushImage(
    endpoint: RegistryEndpoint,
    tag: string,
    seed: string,
): Promise<string> {
    return pushLabelledImage(endpoint, tag, { seed });
}

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

/** An OCI image manifest naming a config blob and layer blobs, as bytes. */
export function ociManifest(
    config: { readonly digest: string; readonly size: number },
    layers: readonly { readonly digest: string; readonly size: number }[],
): Buffer {
    return Buffer.from(
        JSON.stringify({
            schemaVersion: 2,
            mediaType: OCI_MANIFEST,
            config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
            layers: layers.map((l) => ({
                mediaType: "application/vnd.oci.image.layer.v1.tar",
                ...l,
            })),
        }),
    );
}

/** PUTs a manifest under a tag or digest; returns the digest the registry reports. */
export async function putManifest(
    endpoint: RegistryEndpoint,
    reference: string,
    body: Buffer,
    mediaType = OCI_MANIFEST,
): Promise<string> {
    const res = await authorizedRequest(
        endpoint,
        "PUT",
        `/v2/${endpoint.repository}/manifests/${reference}`,
        { "Content-Type": mediaType },
        "push,pull",
        body,
    );
    if (res.status !== 201) throw new Error(`manifest PUT answered ${res.status}: ${res.body}`);
    return String(res.headers["docker-content-digest"]);
}

/**
 * Publishes a one-layer OCI image whose config carries `labels`, as an image built from this
 * project's Dockerfile would. Returns the manifest digest the registry reports.
 */
export async function pushLabelledImage(
    endpoint: RegistryEndpoint,
    tag: string,
    labels: Record<string, string>,
    platform = "linux/amd64",
): Promise<string> {
    const [os, architecture] = platform.split("/");
    const layer = Buffer.from(`layer ${JSON.stringify(labels)}\n`);
    const config = Buffer.from(
        JSON.stringify({
            architecture,
            os,
            config: { Labels: labels },
            rootfs: { type: "layers", diff_ids: [sha256(layer)] },
        }),
    );
    const manifest = ociManifest(
        { digest: await pushBlob(endpoint, config), size: config.length },
        [{ digest: await pushBlob(endpoint, layer), size: layer.length }],
    );
    return putManifest(endpoint, tag, manifest);
}
