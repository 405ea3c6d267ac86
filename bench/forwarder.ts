/** The benches' forwarder on 127.0.0.1 in front of a registry: counts what it passes on. */
import { forward, startScriptedServer } from "../test/support/misbehavingServers";

/**
 * A scripted server (it records every request, `requests`) that forwards each to `target`, and
 * the most requests in flight at once (`stats.peak`); `reset()` starts a new count.
 */
export async function countingForwarder(target: string) {
    const server = await startScriptedServer();
    const stats = { inFlight: 0, peak: 0 };
    server.handler = (req, res) => {
        stats.peak = Math.max(stats.peak, ++stats.inFlight);
        res.on("close", () => stats.inFlight--);
        forward(req, res, new URL(target));
    };
    const reset = () => {
        server.requests.length = 0;
        stats.peak = 0;
    };
    return Object.assign(server, { stats, reset });
}
