/**
 * The registry client carried by Pulumi's closure serialization, as the immutability guard's
 * dynamic provider carries it: a probe provider (test/support/clientProbeProvider.ts) is
 * serialized as `pulumi up` does and run by the SDK's own dynamic provider host over gRPC,
 * against real registries (Debian's docker-registry, distribution 2.8) and a misbehaving server.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { RegistryEndpoint } from "../lib/oci/client";
import {
    ProviderHost,
    serializeProviderAsPulumiUp,
    startDynamicProviderHost,
} from "./support/dynamicProviderHost";
import { ScriptedServer, startScriptedServer } from "./support/misbehavingServers";
import { LocalRegistry, pushImage, startRegistry } from "./support/registry";

jest.setTimeout(60_000);

let dir: string;
let providerText: string;
let host: ProviderHost;
let bearer: LocalRegistry;
let tls: LocalRegistry;
let server: ScriptedServer;

beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "client-probe-"));
    // One after the other, each kept as it starts: when one fails to start, afterAll stops the
    // ones that did, and jest does not hang on a server left running.
    providerText = await serializeProviderAsPulumiUp(
        "test/support/clientProbeProvider.ts",
        "clientProbeProvider",
        dir,
    );
    bearer = await startRegistry({ auth: "token" });
    tls = await startRegistry({ tls: true, auth: "htpasswd" });
    server = await startScriptedServer();
    // Started in the project directory, as the engine starts the dynamic provider plugin: the
    // serialized closure requires undici by name, from the project's node_modules.
    host = await startDynamicProviderHost(path.resolve(__dirname, ".."), providerText);
});
afterAll(async () => {
    await host?.stop();
    await Promise.all([bearer?.stop(), tls?.stop(), server?.stop()]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const probe = (endpoint: RegistryEndpoint, reference: string) =>
    host.check({}, { endpoint, reference });

it("carries undici and Node built-ins by name, and the client's own code by value", () => {
    const required = [...providerText.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]);
    expect(new Set(required)).toEqual(new Set(["crypto", "tls", "undici/index.js"]));
    expect(providerText).toContain("function __lookupManifest(");
});

it.each([
    ["a Bearer token realm", () => bearer],
    ["TLS and htpasswd (Basic)", () => tls],
])("finds an existing tag, its labels, and an absent tag, on %s", async (_label, registry) => {
    const endpoint = registry().endpoint("ml/probe");
    const digest = await pushImage(endpoint, "1.0.0", "serialized");
    const found = await probe(endpoint, "1.0.0");
    expect(found.failures).toEqual([]);
    expect(found.inputs).toMatchObject({
        lookup: {
            exists: true,
            digest,
            mediaType: "application/vnd.oci.image.manifest.v1+json",
        },
        labels: { seed: "serialized" },
    });
    const absent = await probe(endpoint, "9.9.9");
    expect(absent.failures).toEqual([]);
    expect(absent.inputs.lookup).toEqual({ exists: false });
});

it("keeps the error kinds and messages: invalid input, not a registry, a missed deadline", async () => {
    const invalid = await probe(bearer.endpoint("ml/../../other"), "1.0.0");
    expect(invalid.failures[0].reason).toMatch(/^invalid: repository "ml\/\.\.\/\.\.\/other"/);

    server.handler = (_req, res) => {
        res.writeHead(404, { "Content-Type": "text/html" }).end("<html>no</html>");
    };
    const notRegistry = await probe({ apiUrl: server.url, repository: "ml/x" }, "1.0.0");
    expect(notRegistry.failures[0].reason).toMatch(
        /^protocol: .* does not look like an OCI registry API/,
    );

    server.handler = (req, res) => {
        res.writeHead(200, { "Content-Type": "application/json", "Content-Length": "1000" });
        const drip = setInterval(() => res.write(" "), 100);
        res.on("close", () => clearInterval(drip));
    };
    const late = await probe(
        { apiUrl: server.url, repository: "ml/x", requestDeadlineMs: 400, deadlineMs: 1000 },
        "1.0.0",
    );
    expect(late.failures[0].reason).toMatch(
        /^unreachable: .*did not finish the lookup within 1000 ms/,
    );
});
