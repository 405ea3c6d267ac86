/** Docker image references (`baseImage`, `localRegistryImage`), as Docker itself parses them. */
import { Problem, plural } from "./problem";

// Docker's image reference grammar (distribution/reference):
//   reference := name [":" tag] ["@" digest];  name := [domain "/"] path-component ["/" path-component]*
//   domain := host [":" port]  (host: DNS name, IPv4 or [IPv6]; upper case allowed)
//   path-component := [a-z0-9]+ (separator [a-z0-9]+)*;  separator := [_.] | "__" | "-"+
//   tag := [\w][\w.-]{0,127};  digest := algorithm ":" [0-9a-fA-F]{32,}
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN = new RegExp(
    `^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]+)?$`,
);
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[_.]|__|-+)[a-z0-9]+)*$/;
/** The digests Docker accepts (go-digest's Validate): a known algorithm and its length, lower-case hex. */
const DIGEST = /^(?:sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})$/;
/** distribution/reference's limit on a name (domain and path). */
const NAME_TOTAL_LENGTH_MAX = 255;

/**
 * An image reference as Docker parses it (`python:3.12-slim`, `registry.example:5000/team/base:1`,
 * `name@sha256:...`). The first component is the registry's domain when it contains `.` or `:`
 * or is `localhost`; the domain may have upper-case letters, the repository path may not (Docker
 * refuses `Python:3.12`: "repository name must be lowercase"). The suggestion lower-cases the
 * path and keeps the rest.
 */
export function checkImageReference(value: string): Problem | undefined {
    const expected =
        "expected an image reference such as python:3.12-slim or registry.example:5000/team/base:1.0 " +
        "([registry/]path[:tag][@digest])";
    if (value === "") return { reason: `it is empty; ${expected}` };
    if (/\s/.test(value)) {
        const trimmed = value.trim();
        return {
            reason: `an image reference has no white space; ${expected}`,
            suggestion:
                /^\S+$/.test(trimmed) && !checkImageReference(trimmed) ? trimmed : undefined,
        };
    }
    const at = value.indexOf("@");
    const digest = at === -1 ? undefined : value.slice(at + 1);
    const nameAndTag = at === -1 ? value : value.slice(0, at);
    const slash = nameAndTag.lastIndexOf("/");
    const colon = nameAndTag.indexOf(":", slash + 1);
    const tag = colon === -1 ? undefined : nameAndTag.slice(colon + 1);
    const name = colon === -1 ? nameAndTag : nameAndTag.slice(0, colon);
    const parts = name.split("/");
    const hasDomain = parts.length > 1 && (/[.:]/.test(parts[0]) || parts[0] === "localhost");
    const domain = hasDomain ? parts[0] : undefined;
    const path = hasDomain ? parts.slice(1) : parts;

    if (digest !== undefined && !DIGEST.test(digest)) {
        const lower = digest.toLowerCase();
        return {
            reason: `the digest ${JSON.stringify(digest)} is not one Docker accepts (sha256: and 64, sha384: and 96, or sha512: and 128 lower-case hex digits); ${expected}`,
            suggestion: DIGEST.test(lower) ? value.replace(digest, lower) : undefined,
        };
    }
    if (tag !== undefined && !/^[\w][\w.-]{0,127}$/.test(tag)) {
        return {
            reason: `the tag ${JSON.stringify(tag)} is not a valid tag (1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-'); ${expected}`,
        };
    }
    if (domain !== undefined && !DOMAIN.test(domain)) {
        return {
            reason: `the registry ${JSON.stringify(domain)} is not a host[:port]; ${expected}`,
        };
    }
    if (name.length > NAME_TOTAL_LENGTH_MAX) {
        return {
            reason: `the name is ${plural(name.length, "character")} long; Docker allows at most ${NAME_TOTAL_LENGTH_MAX}`,
        };
    }
    const bad = path.find((component) => !PATH_COMPONENT.test(component));
    if (bad === undefined) return undefined;
    const lowered = path.map((component) => component.toLowerCase());
    if (/[A-Z]/.test(bad) && lowered.every((component) => PATH_COMPONENT.test(component))) {
        const rebuilt =
            [domain, ...lowered].filter((x) => x !== undefined).join("/") +
            (tag !== undefined ? `:${tag}` : "") +
            (digest !== undefined ? `@${digest}` : "");
        return {
            reason: `the repository path ${JSON.stringify(path.join("/"))} has upper-case letters, and Docker refuses it ("repository name must be lowercase"; only a registry's host may have upper case)`,
            suggestion: rebuilt,
        };
    }
    return {
        reason: `the repository path component ${JSON.stringify(bad)} is not lower-case letters and digits separated by '.', '_', '__' or '-'; ${expected}`,
    };
}
