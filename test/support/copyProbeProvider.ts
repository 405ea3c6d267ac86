/**
 * A dynamic provider whose `check` runs `copyImage` and returns its result, so a test can prove
 * that the copy still works after Pulumi's closure serialization, inside the SDK's dynamic
 * provider host, as a promotion's provider runs it.
 */
import * as pulumi from "@pulumi/pulumi";
import { RegistryEndpoint, RegistryError } from "../../lib/oci/client";
import { copyImage } from "../../lib/oci/copy";

export interface CopyProbeInputs {
    readonly source: RegistryEndpoint;
    readonly reference: string;
    readonly destination: RegistryEndpoint;
    readonly tag: string;
}

export const copyProbeProvider: pulumi.dynamic.ResourceProvider = {
    async check(_olds: unknown, news: CopyProbeInputs) {
        try {
            const result = await copyImage(news.source, news.reference, news.destination, news.tag);
            return { inputs: { ...news, result } };
        } catch (e) {
            const error = e as RegistryError;
            return {
                inputs: news,
                failures: [{ property: "reference", reason: `${error.kind}: ${error.message}` }],
            };
        }
    },

    async create() {
        throw new Error("the copy probe only checks");
    },
};
