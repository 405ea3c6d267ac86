/** What every rule returns, and the one word helper their reasons share. */

/** One thing wrong with one value. */
export interface Problem {
    /** What the value must be, in a sentence. */
    readonly reason: string;
    /** A valid value to suggest in the fix, when one can be derived from the bad one. */
    readonly suggestion?: string;
    /** For a list: the item that is wrong (0-based). */
    readonly index?: number;
}

/** `1 character`, `2 characters`: a count with its noun in the right number. */
export function plural(count: number, noun: string): string {
    return `${count} ${count === 1 ? noun : `${noun}s`}`;
}
