/** The benches' forwarder on 127.0.0.1 in front of a registry: counts what it passes on. */
import * as http from "http";
import { AddressInfo } from "net";
import { forward } from "../test/support/misbehavingServers";

/**
 * Forwards every request to `target` and records it (`requests`, as `METHOD path`) and the most
 * in flight at once (`peak`); `reset()` starts a new count.
 */
export async function countingForwarder(target: string) {
    const requests: string[] = [];
    const stats = { inFlight: 0, peak: 0 };
    const server = http.createServer((req, res) => {
        requests.push(`${req.method} ${req.url}`);
        stats.peak = Math.max(stats.peak, ++stats.inFlight);
        res.on("close", () => stats.inFlight--);
        forward(req, res, new URL(target));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const { port } = server.address() as AddressInfo;
    return {
        host: `127.0.0.1:${port}`,
        apiUrl: `http://127.0.0.1:${port}`,
        requests,
        stats,
        reset: () => {
            requests.length = 0;
            stats.peak = 0;
        },
        close: () => new Promise<void>((r) => server.close(() => r())),
    };
}
