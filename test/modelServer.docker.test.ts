/**
 * The example model server (model/server.py) against hostile and broken clients, in the real
 * image: built once by a Docker engine with the program's build inputs, run once, and sent what
 * an HTTP client library never would (raw TCP). Every refusal must be a well-formed HTTP answer
 * with a strict JSON body, never a dropped connection; the server must free what slow clients
 * hold, stop promptly on `docker stop`, and keep its log free of terminal escape codes.
 * Never skipped: without Docker these tests fail with the command that installs it.
 */
import { createHash } from "crypto";
import * as fs from "fs";
import { modelBuildSpec, ModelBuildSpec } from "../lib/publication/buildSpec";
import { baseImage, buildWithSpec, docker, ensureDockerEngine } from "./support/docker";
import {
    ModelServerContainer,
    RawAnswer,
    openRaw,
    rawPredict,
    rawRequest,
    runModelServer,
    threadCount,
} from "./support/modelServer";

jest.setTimeout(5 * 60_000);

/** Short limits, so the timeout test takes seconds; the defaults (64, 10 s) work the same way. */
const MAX_CONNECTIONS = 8;
const REQUEST_TIMEOUT_SECONDS = 2;

const tag = `model-registry-test/model-server:1.0.0-${process.pid}`;
let spec: ModelBuildSpec;
let server: ModelServerContainer;

beforeAll(async () => {
    await ensureDockerEngine();
    spec = await modelBuildSpec({
        context: "model",
        version: "1.0.0",
        platform: "linux/amd64",
        baseImage: baseImage(),
        publisher: "model-registry/test",
    });
    await buildWithSpec(spec, tag);
    server = await runModelServer(tag, {
        MAX_CONNECTIONS: String(MAX_CONNECTIONS),
        REQUEST_TIMEOUT_SECONDS: String(REQUEST_TIMEOUT_SECONDS),
    });
});

afterAll(async () => {
    if (server) await docker(["rm", "-f", server.id]).catch(() => undefined);
    await docker(["rmi", "-f", tag]).catch(() => undefined);
});

/** Asserts a complete refusal: the status, a JSON content type and a strict-JSON error body. */
function expectRefusal(answer: RawAnswer, status: number, error: RegExp) {
    expect({ status: answer.status, ended: answer.ended }).toEqual({ status, ended: "closed" });
    expect(answer.headers["content-type"]).toBe("application/json");
    expect(Number(answer.headers["content-length"])).toBe(Buffer.byteLength(answer.body, "latin1"));
    // JSON.parse is strict: NaN, Infinity or a truncated body throw here.
    const json = JSON.parse(answer.body);
    expect(Object.keys(json)).toEqual(["error"]);
    expect(json.error).toMatch(error);
}

describe("the example model server", () => {
    it("answers /predict in strict JSON, as before", async () => {
        const res = await fetch(`${server.url}/predict`, {
            method: "POST",
            signal: AbortSignal.timeout(10_000),
            headers: { "Content-Type": "application/json; charset=utf-8" },
            body: JSON.stringify({
                inputs: [
                    [5.1, 3.5, 1.4, 0.2],
                    [6.7, 3.0, 5.2, 2.3],
                ],
            }),
        });
        expect(res.status).toBe(200);
        expect(res.headers.get("content-type")).toBe("application/json");
        const json = JSON.parse(await res.text());
        expect(json.version).toBe("1.0.0");
        expect(json.predictions.map((p: { label: string }) => p.label)).toEqual([
            "setosa",
            "virginica",
        ]);
    });

    it("reports its digests in /health under the names the labels and the stack use", async () => {
        const health: any = await (
            await fetch(`${server.url}/health`, { signal: AbortSignal.timeout(10_000) })
        ).json();
        const labels = JSON.parse(
            (await docker(["image", "inspect", "--format", "{{json .Config.Labels}}", tag])).stdout,
        );
        const file = createHash("sha256").update(fs.readFileSync("model/model.json")).digest("hex");
        expect(health).toEqual({
            status: "ok",
            version: "1.0.0",
            model: "iris-softmax",
            // The build context digest: the stack output model_sha256 and the image label.
            model_sha256: spec.modelSha256,
            fingerprint: spec.fingerprint,
            model_file_sha256: `sha256:${file}`,
        });
        expect(health.model_sha256).toBe(labels["model-registry.model.sha256"]);
        expect(health.fingerprint).toBe(labels["model-registry.fingerprint"]);
        expect(spec.modelSha256).toMatch(/^sha256:[0-9a-f]{64}$/);
        expect(spec.modelSha256).not.toBe(health.model_file_sha256);
    });

    it("answers 400 to a Content-Length that is not a number", async () => {
        const answer = await rawRequest(server.port, rawPredict("{}", ["Content-Length: abc"]));
        expectRefusal(answer, 400, /Content-Length must be one decimal number/);
        const twice = await rawRequest(
            server.port,
            rawPredict("{}", ["Content-Length: 2", "Content-Length: 3"]),
        );
        expectRefusal(twice, 400, /Content-Length must be one decimal number/);
    });

    it("reads a Content-Length with leading zeros as its number, and refuses white space before the colon", async () => {
        const rows = '{"inputs": [[5.1, 3.5, 1.4, 0.2]]}';
        const padded = await rawRequest(
            server.port,
            rawPredict(rows, [`Content-Length: ${String(rows.length).padStart(13, "0")}`]),
        );
        expect(padded.status).toBe(200);
        expect(JSON.parse(padded.body).predictions).toHaveLength(1);
        const spaced = await rawRequest(
            server.port,
            rawPredict(rows, [`Content-Length : ${rows.length}`]),
        );
        expectRefusal(spaced, 400, /malformed header line/);
    });

    it("answers HEAD /health with the GET headers and no body", async () => {
        const get = await rawRequest(server.port, "GET /health HTTP/1.1\r\nHost: model\r\n\r\n");
        const head = await rawRequest(server.port, "HEAD /health HTTP/1.1\r\nHost: model\r\n\r\n");
        expect(head.status).toBe(200);
        expect(head.body).toBe("");
        expect(head.headers["content-type"]).toBe("application/json");
        expect(head.headers["content-length"]).toBe(get.headers["content-length"]);
    });

    it.each([
        ["a 400-digit integer", `{"inputs": [[${"9".repeat(400)}, 1, 1, 1]]}`, /too large/],
        ["1e400", '{"inputs": [[1e400, 1, 1, 1]]}', /too large/],
        ["100k nested [", "[".repeat(100_000), /nested too deeply/],
        ["100k nested [ inside inputs", `{"inputs": ${"[".repeat(100_000)}}`, /nested too deeply/],
        ["a NaN literal", '{"inputs": [[NaN, 1, 1, 1]]}', /NaN is not JSON/],
        ["truncated JSON", '{"inputs": [[1, 2', /not valid JSON/],
        ["bytes that are not UTF-8", '{"inputs": "\xff\xfe"}', /not valid JSON/],
        ["a row of booleans", '{"inputs": [[true, false, true, false]]}', /row 0: expected 4/],
        ["too short a row", '{"inputs": [[1, 2]]}', /row 0: expected 4 finite numbers/],
        ["no rows", '{"inputs": []}', /at least one row/],
        ["a list, not an object", "[[1, 2, 3, 4]]", /expected \{"inputs"/],
        ["an empty body", "", /the body is empty/],
    ])("answers 400 in JSON to %s", async (_name, body, error) => {
        expectRefusal(await rawRequest(server.port, rawPredict(body)), 400, error);
    });

    it("answers 422 in strict JSON when the inputs overflow the model's scores (1e308)", async () => {
        const answer = await rawRequest(
            server.port,
            rawPredict('{"inputs": [[5.1, 3.5, 1.4, 0.2], [1e308, 1e308, 1e308, 1e308]]}'),
        );
        expectRefusal(answer, 422, /row 1: the values are too large for this model/);
        expect(answer.body).not.toMatch(/NaN|Infinity/);
    });

    it("refuses a body over 1 MiB with 413, after which the client still sees the answer", async () => {
        const body = `{"inputs": [[${"1, ".repeat(400_000)}1]]}`;
        expectRefusal(await rawRequest(server.port, rawPredict(body)), 413, /over 1048576 bytes/);
        const claimed = await rawRequest(
            server.port,
            rawPredict("{}", ["Content-Length: " + "9".repeat(400)]),
        );
        expectRefusal(claimed, 413, /over 1048576 bytes/);
    });

    it("refuses a wrong content type (415), a missing length (411), and unknown routes", async () => {
        const rows = '{"inputs": [[5.1, 3.5, 1.4, 0.2]]}';
        const form = rawPredict(rows).replace(
            "application/json",
            "application/x-www-form-urlencoded",
        );
        expectRefusal(await rawRequest(server.port, form), 415, /Content-Type: application\/json/);
        const chunked = [
            "POST /predict HTTP/1.1",
            "Host: model",
            "Content-Type: application/json",
            "Transfer-Encoding: chunked",
            "",
            `${rows.length.toString(16)}\r\n${rows}\r\n0\r\n\r\n`,
        ].join("\r\n");
        expectRefusal(await rawRequest(server.port, chunked), 411, /Content-Length/);
        expectRefusal(
            await rawRequest(server.port, "GET /nothing HTTP/1.1\r\nHost: model\r\n\r\n"),
            404,
            /not found/,
        );
        const wrongMethod = await rawRequest(
            server.port,
            "GET /predict HTTP/1.1\r\nHost: model\r\n\r\n",
        );
        expectRefusal(wrongMethod, 405, /use POST/);
        expect(wrongMethod.headers.allow).toBe("POST");
        const postHealth = await rawRequest(
            server.port,
            rawPredict("{}").replace("/predict", "/health"),
        );
        expectRefusal(postHealth, 405, /use GET, HEAD/);
        expect(postHealth.headers.allow).toBe("GET, HEAD");
        expectRefusal(await rawRequest(server.port, "NONSENSE\r\n\r\n"), 400, /./);
    });

    it("closes half-sent requests after its timeout, with at most MAX_CONNECTIONS threads", async () => {
        const clients = 40;
        const threadsBefore = await threadCount(server.id);
        const started = Date.now();
        const pending = Array.from({ length: clients }, (_, i) =>
            openRaw(
                server.port,
                `POST /predict HTTP/1.1\r\nHost: model\r\nX-Client: ${i}\r\nContent-Type: applic`,
                REQUEST_TIMEOUT_SECONDS * 1000 + 8_000,
            ),
        );
        try {
            await new Promise((r) => setTimeout(r, 500));
            // At most MAX_CONNECTIONS handler threads, however many clients hold a connection
            // open (an unbounded server runs one thread per client).
            const threadsHeld = await threadCount(server.id);
            expect(threadsHeld).toBeLessThanOrEqual(threadsBefore + MAX_CONNECTIONS);

            const answers = await Promise.all(pending.map((p) => p.answer));
            // Every connection was closed by the server, not by our timer: those it served
            // after its request timeout with 408, the ones beyond MAX_CONNECTIONS at once with 503.
            expect(answers.map((a) => a.ended)).toEqual(answers.map(() => "closed"));
            const byStatus = (s: number) => answers.filter((a) => a.status === s);
            expect(byStatus(408).length + byStatus(503).length).toBe(clients);
            expect(byStatus(408).length).toBeGreaterThanOrEqual(1);
            expect(byStatus(408).length).toBeLessThanOrEqual(MAX_CONNECTIONS);
            for (const a of byStatus(408)) {
                expectRefusal(a, 408, /not sent in time/);
                expect(a.ms).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_SECONDS * 1000 - 300);
            }
            for (const a of byStatus(503)) expectRefusal(a, 503, /busy/);
            expect(Date.now() - started).toBeLessThan(REQUEST_TIMEOUT_SECONDS * 1000 + 5_000);
        } finally {
            pending.forEach((p) => p.destroy());
        }

        // The slots are free again: a normal request is answered at once.
        const t0 = Date.now();
        const res = await fetch(`${server.url}/health`, { signal: AbortSignal.timeout(10_000) });
        expect(res.status).toBe(200);
        expect(Date.now() - t0).toBeLessThan(1_000);
        expect(await threadCount(server.id)).toBeLessThanOrEqual(threadsBefore);
    });

    it.each([
        ["PORT", "70000"],
        ["REQUEST_TIMEOUT_SECONDS", "1e300"],
        ["MAX_CONNECTIONS", "0"],
    ])("refuses %s=%s at start, with one line and no traceback", async (name, value) => {
        const run = await docker(["run", "--rm", "-e", `${name}=${value}`, tag]).then(
            () => undefined,
            (e: Error) => e.message,
        );
        expect(run).toContain(`${name}='${value}': expected a number from`);
        expect(run).not.toContain("Traceback");
    });

    it("escapes control characters in its log lines", async () => {
        const answer = await rawRequest(server.port, "GET /\x1b[31mred\x9b\x07 HTTP/1.0\r\n\r\n");
        expectRefusal(answer, 404, /not found/);
        const logs = await docker(["logs", server.id]);
        const text = logs.stdout + logs.stderr;
        expect(text).toContain('"GET /\\x1b[31mred\\x9b\\x07 HTTP/1.0" 404');
        expect(text).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f\x80-\x9f]/);
    });

    // Last: it stops the shared container.
    it("stops on docker stop within 5 s, answering a request still arriving with 503", async () => {
        const arriving = openRaw(server.port, "GET /health HTTP/1.1\r\nHost: mo", 15_000);
        await new Promise((r) => setTimeout(r, 300));
        const t0 = Date.now();
        await docker(["stop", server.id]);
        const stopMs = Date.now() - t0;
        expect(stopMs).toBeLessThan(5_000);
        const state = JSON.parse(
            (await docker(["inspect", "--format", "{{json .State}}", server.id])).stdout,
        );
        expect({ exitCode: state.ExitCode, oomKilled: state.OOMKilled }).toEqual({
            exitCode: 0,
            oomKilled: false,
        });
        expectRefusal(await arriving.answer, 503, /shutting down/);
        const logs = await docker(["logs", server.id]);
        expect(logs.stderr).toContain("\nSIGTERM: stopping\n");
        expect(logs.stderr).toMatch(/\nstopped\n$/);
    });
});
