/**
 * A dynamic provider whose `check` runs `copyImage` and returns its result, so a test can prove
 * that the copy still works after Pulumi's closure serialization, inside the SDK's dynamic
 * provider host, as a promotion's provider runs it.
 */
import { RegistryEndpoint } from "../../lib/oci/client";
import { copyImage } from "../../lib/oci/copy";
import { probeProvider } from "./clientProbeProvider";

interface CopyProbeInputs {
    readonly source: RegistryEndpoint;
    readonly reference: string;
    readonly destination: RegistryEndpoint;
    readonly tag: string;
}

export const copyProbeProvider = probeProvider(async (news: CopyProbeInputs) => ({
    result: await copyImage(news.source, news.reference, news.destination, news.tag),
}));
