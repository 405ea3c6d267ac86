/**
 * A dynamic provider whose `check` runs the registry client and returns what it found, so a test
 * can prove that the client still works after Pulumi's closure serialization, inside the SDK's
 * dynamic provider host, as the immutability guard runs it.
 */
import * as pulumi from "@pulumi/pulumi";
import {
    RegistryEndpoint,
    RegistryError,
    getImageConfig,
    headManifest,
} from "../../lib/oci/client";

export interface ClientProbeInputs {
    readonly endpoint: RegistryEndpoint;
    readonly reference: string;
}

export const clientProbeProvider: pulumi.dynamic.ResourceProvider = {
    async check(_olds: unknown, news: ClientProbeInputs) {
        try {
            const lookup = await headManifest(news.endpoint, news.reference);
            const config = lookup.exists
                ? await getImageConfig(news.endpoint, news.reference)
                : undefined;
            return { inputs: { ...news, lookup, labels: config?.labels ?? null } };
        } catch (e) {
            const error = e as RegistryError;
            return {
                inputs: news,
                failures: [{ property: "reference", reason: `${error.kind}: ${error.message}` }],
            };
        }
    },

    async create() {
        throw new Error("the client probe only checks");
    },
};
