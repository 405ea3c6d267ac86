import * as pulumi from "@pulumi/pulumi";
import { ProviderResource } from "./publicationRecord";

/**
 * bcrypt cost of the htpasswd line. The registry checks the hash on every request, and the
 * password is 192 random bits, which no cost would make easier or harder to guess: the cost of
 * `htpasswd -B`'s default.
 */
export const BCRYPT_COST = 5;

/**
 * Makes the password once, when the resource is created; it never changes afterwards (no
 * update), so every run pushes with the same login. Rotating it is replacing the resource:
 * `pulumi up --replace <its URN>`. Another username is a new login too.
 */
export const registryLoginProvider: pulumi.dynamic.ResourceProvider = {
    async diff(_id: string, olds: { username: string }, news: { username: string }) {
        const changed = olds.username !== news.username;
        return { changes: changed, replaces: changed ? ["username"] : [] };
    },

    async create({ username }: { username: string }) {
        // Required here, not imported at the top: the provider is serialized into the state, and a
        // require inside the function is what the serializer keeps as a require.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const crypto = require("crypto") as typeof import("crypto");
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const bcrypt = require("bcryptjs") as typeof import("bcryptjs");
        const password = crypto.randomBytes(24).toString("base64url");
        const hash = bcrypt.hashSync(password, bcrypt.genSaltSync(BCRYPT_COST));
        return { id: username, outs: { username, password, htpasswd: `${username}:${hash}\n` } };
    },

    async delete() {
        // Nothing outside the state holds the password: the container that used it goes with it.
    },
};

/**
 * The login of a registry the stack runs: a generated password, kept in the state as a secret,
 * and its htpasswd line for the registry container.
 */
export class RegistryLogin extends ProviderResource {
    declare public readonly username: pulumi.Output<string>;
    /** Random, 32 characters of base64url (192 bits); a secret. */
    declare public readonly password: pulumi.Output<string>;
    /** `<username>:<bcrypt hash of password>\n`, what distribution's htpasswd auth reads; a secret. */
    declare public readonly htpasswd: pulumi.Output<string>;

    constructor(
        name: string,
        args: { username: pulumi.Input<string> },
        opts?: pulumi.CustomResourceOptions,
    ) {
        const secrets = ["password", "htpasswd"];
        const secretOpts = { ...opts, additionalSecretOutputs: secrets };
        // Only the user name: no other field of a wider object reaches the state.
        const inputs = { username: args.username };
        super(registryLoginProvider, "RegistryLogin", name, inputs, secrets, secretOpts);
    }
}
