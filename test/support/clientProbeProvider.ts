/**
 * A dynamic provider whose `check` runs the registry client and returns what it found, so a test
 * can prove that the client still works after Pulumi's closure serialization, inside the SDK's
 * dynamic provider host, as the immutability guard runs it. `probeProvider` makes such a provider
 * for any probe (copyProbeProvider.ts runs a copy).
 */
import * as pulumi from "@pulumi/pulumi";
import {
    RegistryEndpoint,
    RegistryError,
    getImageConfig,
    headManifest,
} from "../../lib/oci/client";

/**
 * A provider whose `check` returns its inputs with what `probe` found added, or the probe's
 * `RegistryError` as a check failure; it creates nothing.
 */
export function probeProvider<T extends object>(
    probe: (news: T) => Promise<object>,
): pulumi.dynamic.ResourceProvider {
    return {
        async check(_olds: unknown, news: T) {
            try {
                return { inputs: { ...news, ...(await probe(news)) } };
            } catch (e) {
                const error = e as RegistryError;
                return {
                    inputs: news,
                    failures: [
                        { property: "reference", reason: `${error.kind}: ${error.message}` },
                    ],
                };
            }
        },

        async create() {
            throw new Error("the probe only checks");
        },
    };
}

interface ClientProbeInputs {
    readonly endpoint: RegistryEndpoint;
    readonly reference: string;
}

export const clientProbeProvider = probeProvider(async (news: ClientProbeInputs) => {
    const lookup = await headManifest(news.endpoint, news.reference);
    const config = lookup.exists ? await getImageConfig(news.endpoint, news.reference) : undefined;
    return { lookup, labels: config?.labels ?? null };
});
