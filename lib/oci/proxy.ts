/**
 * The proxy for a registry request, from the environment, as Docker (Go's httpproxy) reads it;
 * and the IP address parsing that NO_PROXY needs.
 */
import { registryError, shown, withoutCredentials } from "./errors";

/**
 * The proxy for a request to `url` from `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` (or their
 * lower-case forms, upper case first), with Go's rules, as Docker uses them: `https:` requests
 * use only HTTPS_PROXY, `http:` only HTTP_PROXY; `localhost` and loopback addresses are never
 * proxied; NO_PROXY holds `*`, IPs, CIDRs, and domains (`example.com` also matches its
 * subdomains, `.example.com` and `*.example.com` only them), each with an optional `:port`.
 */
export function proxyFor(
    url: URL,
    env: Readonly<Record<string, string | undefined>> = process.env,
): URL | undefined {
    const pick = (...names: string[]) => names.map((n) => env[n]).find((v) => v) ?? "";
    const value =
        url.protocol === "https:"
            ? pick("HTTPS_PROXY", "https_proxy")
            : url.protocol === "http:"
              ? pick("HTTP_PROXY", "http_proxy")
              : "";
    if (!value) return undefined;
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1").toLowerCase();
    const port = url.port || (url.protocol === "https:" ? "443" : "80");
    const ip = parseIp(host);
    if (host === "localhost" || (ip && isLoopback(ip))) return undefined;
    for (const raw of pick("NO_PROXY", "no_proxy").split(",")) {
        const entry = raw.trim().toLowerCase();
        if (!entry) continue;
        if (entry === "*") return undefined;
        const cidr = /^([^/]+)\/(\d{1,3})$/.exec(entry);
        if (cidr) {
            const net = parseIp(cidr[1]);
            if (net) {
                if (ip && inNetwork(ip, net, Number(cidr[2]))) return undefined;
                continue;
            }
        }
        const hp = /^\[([^\]]*)\](?::(\d*))?$/.exec(entry) ?? /^([^:]*):(\d*)$/.exec(entry);
        const entryHost = hp ? hp[1] : entry.replace(/^\[(.*)\]$/, "$1");
        const entryPort = hp?.[2] ?? "";
        if (!entryHost) continue;
        const portMatches = entryPort === "" || entryPort === port;
        const entryIp = parseIp(entryHost);
        if (entryIp) {
            if (ip && String(ip) === String(entryIp) && portMatches) return undefined;
            continue;
        }
        const domain = entryHost.startsWith("*.") ? entryHost.slice(1) : entryHost;
        const matchHost = !domain.startsWith(".");
        const suffix = matchHost ? `.${domain}` : domain;
        if ((host.endsWith(suffix) || (matchHost && host === domain)) && portMatches) {
            return undefined;
        }
    }
    // As Go reads it: a value without a scheme is an http:// proxy.
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1].toLowerCase();
    if (scheme && scheme !== "http" && scheme !== "https") {
        throw registryError(
            `the proxy ${withoutCredentials(value)} (from the environment) is a ${shown(scheme, 20)}:// proxy, which ` +
                "this client does not speak: give an http:// or https:// proxy, or name the registry in NO_PROXY",
            "invalid",
        );
    }
    const proxy = scheme ? value : `http://${value}`;
    if (URL.canParse(proxy)) return new URL(proxy);
    throw registryError(
        `the proxy "${withoutCredentials(value)}" (from the environment) is not an http:// or https:// URL`,
        "invalid",
    );
}

// IP addresses, for NO_PROXY as Go reads it (an IPv4-mapped IPv6 address is its IPv4 address)

/** Bytes of an IPv4 (4) or IPv6 (16; IPv4-mapped ones as 4) address, or undefined. */
function parseIp(text: string): number[] | undefined {
    const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
    if (v4) {
        const bytes = v4.slice(1).map(Number);
        return bytes.every((b) => b <= 255) ? bytes : undefined;
    }
    if (!text.includes(":")) return undefined;
    const halves = text.toLowerCase().split("::");
    if (halves.length > 2) return undefined;
    const groups = halves.map((h) => (h === "" ? [] : h.split(":")));
    const lastGroups = groups[groups.length - 1];
    let tail: number[] = [];
    if (lastGroups.length > 0 && lastGroups[lastGroups.length - 1].includes(".")) {
        const embedded = parseIp(lastGroups.pop() as string);
        if (!embedded || embedded.length !== 4) return undefined;
        tail = embedded;
    }
    const words = groups.map((g) =>
        g.map((w) => (/^[0-9a-f]{1,4}$/.test(w) ? parseInt(w, 16) : NaN)),
    );
    if (words.some((g) => g.some((w) => Number.isNaN(w)))) return undefined;
    const count = words[0].length + (words[1]?.length ?? 0) + tail.length / 2;
    if (halves.length === 1 ? count !== 8 : count > 7) return undefined;
    const all = [...words[0], ...Array<number>(8 - count).fill(0), ...(words[1] ?? [])];
    const bytes = [...all.flatMap((w) => [w >> 8, w & 255]), ...tail];
    const mapped =
        bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 255 && bytes[11] === 255;
    return mapped ? bytes.slice(12) : bytes;
}

export function isLoopbackHost(hostname: string): boolean {
    const ip = parseIp(hostname.replace(/^\[(.*)\]$/, "$1"));
    return ip !== undefined && isLoopback(ip);
}

function isLoopback(ip: number[]): boolean {
    return ip.length === 4 ? ip[0] === 127 : ip.every((b, i) => b === (i === 15 ? 1 : 0));
}

function inNetwork(ip: number[], net: number[], bits: number): boolean {
    if (ip.length !== net.length || bits > ip.length * 8) return false;
    for (let i = 0; i < bits; i++) {
        const mask = 0x80 >> (i % 8);
        if ((ip[i >> 3] & mask) !== (net[i >> 3] & mask)) return false;
    }
    return true;
}
