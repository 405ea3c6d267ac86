/**
 * The registry client's errors, and how text from a server or a user's URL goes into them:
 * escaped, bounded, and without credentials. Plain functions (Pulumi's closure serialization
 * carries them; see `registryError`).
 */
/**
 * Why the registry could not answer; `kind` says what could help. `conflict`: a copy found the
 * destination tag naming another digest, and refused to move it.
 */
export interface RegistryError extends Error {
    readonly kind: "unreachable" | "tls" | "auth" | "protocol" | "invalid" | "conflict";
}

/**
 * A plain `Error` with a kind, made by a function rather than a subclass: Pulumi's closure
 * serialization turns `super(message)` of an `Error` subclass into a call that drops the message.
 */
export function registryError(message: string, kind: RegistryError["kind"]): RegistryError {
    return Object.assign(new Error(escaped(message)), { name: "RegistryError", kind });
}

/** Control and bidi characters (ESC, CR, LF, ...) shown as escapes: a message spans one line. */
function escaped(text: string): string {
    return text.replace(
        /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
        (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    );
}

/** Text a server sent, for a message: escaped, at most `max` characters. */
export function shown(text: string, max = 200): string {
    const more = text.length - max;
    return escaped(more > 0 ? `${text.slice(0, max)}... (${more} more characters)` : text);
}

/**
 * A URL (or what was meant as one) without its user and password, and without the values of
 * its query and fragment (which may hold a token), for a message.
 */
export function withoutCredentials(text: string): string {
    const bare = text.replace(/^([a-z][a-z0-9+.-]*:\/\/)?.*@/is, "$1***@");
    return shown(bare.replace(/([?#&][^=&#]*=)[^&#]*/g, "$1***"));
}
