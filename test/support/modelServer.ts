/**
 * Talking to the example model server in a running container: raw TCP requests (for what an HTTP
 * client would never send), the container's thread count, and start-up waiting.
 */
import * as net from "net";
import { docker } from "./docker";

/** What came back on one raw connection, up to the moment the server closed it. */
export interface RawAnswer {
    /** Everything received, as bytes. */
    readonly raw: Buffer;
    /** The HTTP status, or undefined when nothing parsable came back. */
    readonly status: number | undefined;
    /** Header names lower-cased. */
    readonly headers: Record<string, string>;
    /** The body, latin-1 decoded (the server sends ASCII JSON). */
    readonly body: string;
    /** How the connection ended: the server closed it (FIN or reset), or we gave up waiting. */
    readonly ended: "closed" | "reset" | "timeout";
    /** Milliseconds from sending to the end of the connection. */
    readonly ms: number;
}

/** Splits a raw HTTP/1.x answer into status, headers and body. */
export function parseAnswer(raw: Buffer): Pick<RawAnswer, "status" | "headers" | "body"> {
    const text = raw.toString("latin1");
    const split = text.indexOf("\r\n\r\n");
    const head = split < 0 ? text : text.slice(0, split);
    const [statusLine, ...lines] = head.split("\r\n");
    const m = /^HTTP\/1\.[01] (\d{3}) /.exec(statusLine ?? "");
    const headers: Record<string, string> = {};
    for (const line of lines) {
        const i = line.indexOf(":");
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    return {
        status: m ? Number(m[1]) : undefined,
        headers,
        body: split < 0 ? "" : text.slice(split + 4),
    };
}

/** An open connection that has sent something and waits for the server to answer and close. */
export interface PendingConnection {
    readonly answer: Promise<RawAnswer>;
    /** Closes our side now (for cleanup). */
    destroy(): void;
}

/**
 * Opens a TCP connection, writes `data` (and never closes our side: a client that sent a partial
 * request keeps the connection open), and collects what the server sends until it closes the
 * connection or `timeoutMs` pass.
 */
export function openRaw(
    port: number,
    data: Buffer | string,
    timeoutMs: number,
    host = "127.0.0.1",
): PendingConnection {
    const socket = net.connect({ host, port, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    const start = Date.now();
    const answer = new Promise<RawAnswer>((resolve) => {
        let ended: RawAnswer["ended"] | undefined;
        const finish = (how: RawAnswer["ended"]) => {
            if (ended) return;
            ended = how;
            clearTimeout(timer);
            socket.destroy();
            const raw = Buffer.concat(chunks);
            resolve({ raw, ...parseAnswer(raw), ended: how, ms: Date.now() - start });
        };
        const timer = setTimeout(() => finish("timeout"), timeoutMs);
        socket.on("data", (c: Buffer) => chunks.push(c));
        socket.on("end", () => finish("closed"));
        socket.on("error", () => finish("reset"));
        socket.on("close", () => finish("closed"));
        socket.on("connect", () =>
            socket.write(typeof data === "string" ? Buffer.from(data, "latin1") : data),
        );
    });
    return { answer, destroy: () => socket.destroy() };
}

/** One raw request: writes `data`, returns what the server answered before it closed. */
export function rawRequest(port: number, data: Buffer | string, timeoutMs = 15_000) {
    return openRaw(port, data, timeoutMs).answer;
}

/** A POST /predict with the given body bytes and extra header lines, as raw HTTP/1.1. */
export function rawPredict(body: string, headers: string[] = []): string {
    return [
        "POST /predict HTTP/1.1",
        "Host: model",
        "Content-Type: application/json",
        ...(headers.some((h) => /^content-length:/i.test(h))
            ? headers
            : [`Content-Length: ${Buffer.byteLength(body, "latin1")}`, ...headers]),
        "",
        body,
    ].join("\r\n");
}

/** How many threads the container's PID 1 (the server) runs now. */
export async function threadCount(container: string): Promise<number> {
    const status = (await docker(["exec", container, "cat", "/proc/1/status"])).stdout;
    const m = /^Threads:\s+(\d+)$/m.exec(status);
    if (!m) throw new Error(`no Threads: line in /proc/1/status:\n${status}`);
    return Number(m[1]);
}

/** A running model server container, published on a free port of 127.0.0.1. */
export interface ModelServerContainer {
    readonly id: string;
    readonly port: number;
    readonly url: string;
}

/** `docker run -d` of `image` with `env`, then waits until /health answers 200. */
export async function runModelServer(
    image: string,
    env: Record<string, string> = {},
): Promise<ModelServerContainer> {
    const envArgs = Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
    const id = (
        await docker(["run", "-d", "-p", "127.0.0.1::8080", ...envArgs, image])
    ).stdout.trim();
    const mapped = (await docker(["port", id, "8080/tcp"])).stdout.trim().split("\n")[0];
    const port = Number(mapped.split(":").pop());
    const url = `http://127.0.0.1:${port}`;
    // Raw requests, not fetch: until the server listens, Docker's port proxy accepts and then
    // resets the connection, and fetch can wait forever on that.
    const deadline = Date.now() + 30_000;
    for (;;) {
        const answer = await rawRequest(port, "GET /health HTTP/1.0\r\n\r\n", 2_000);
        if (answer.status === 200) break;
        if (Date.now() > deadline) {
            const logs = await docker(["logs", id]).catch((e: Error) => ({
                stdout: "",
                stderr: e.message,
            }));
            throw new Error(
                `the model server in ${id} did not answer /health:\n${logs.stdout}${logs.stderr}`,
            );
        }
        await new Promise((r) => setTimeout(r, 100));
    }
    return { id, port, url };
}
