import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { checkRepositoryName, credentialsInReference } from "../lib/validation";
import { RegistryCredentials, RegistryTarget, secretCredentials } from "./registry";
import { RegistryLogin } from "./registryLogin";

export interface LocalModelRegistryArgs {
    /** Repository path inside the registry: lower case, separators `._-/`. */
    readonly repositoryName: string;
    /**
     * URL of a registry the user already runs (`http://127.0.0.1:5000`). Defaults to none: the
     * component runs its own registry container.
     */
    readonly registryUrl?: string;
    /**
     * Credentials for `registryUrl`. Defaults to anonymous. The registry the component runs has a
     * login of its own (`credentials` of the component).
     */
    readonly credentials?: pulumi.Input<RegistryCredentials>;
    /** Image of the registry container. Defaults to `registry:2` (CNCF distribution). */
    readonly image?: string;
    /** Port on 127.0.0.1 where the registry container listens. Defaults to 5000. */
    readonly port?: number;
    /**
     * Let `pulumi destroy` delete the registry's volume, and so every published version. Defaults
     * to `false`: the volume is left in place, and the next `pulumi up` finds the versions again.
     */
    readonly forceDestroy?: boolean;
}

/** Where the registry keeps its data inside the `registry:2` container. */
const REGISTRY_DATA_PATH = "/var/lib/registry";

/** Where the registry container reads its htpasswd file (next to registry:2's config.yml). */
export const HTPASSWD_PATH = "/etc/docker/registry/htpasswd";

/**
 * A registry on this machine, for trying the project without a cloud account: either one the user
 * already runs (`registryUrl`), or one the stack runs itself.
 *
 * The stack's own registry is a `registry:2` container bound to 127.0.0.1 only (Docker pushes to
 * a 127.0.0.0/8 registry over plain HTTP without further set-up), with its data in a named
 * `docker.Volume`: replacing the container (a new image, another port) keeps every published
 * version. The registry's delete API stays off. It refuses anonymous requests, reads and writes
 * alike (htpasswd auth): its login is a generated password (`RegistryLogin`), a secret in the
 * stack's state, which the guard, the push, the record and a promotion use as this registry's
 * credentials, and which `credentials` gives to the stack's outputs. Rotating it (replacing the
 * login) replaces the container with the new htpasswd file; the volume stays. The container is
 * created only once the registry answers `/v2/` with its demand for credentials (a health check
 * the Docker provider waits for), and the tag guard and the push follow it.
 *
 * No AWS resource or invoke is registered.
 */
export class LocalModelRegistry extends pulumi.ComponentResource {
    /** `127.0.0.1:<port>/<name>`, or `<host>/<name>` of `registryUrl`. */
    public readonly repositoryUri: pulumi.Output<string>;
    public readonly repositoryName: pulumi.Output<string>;
    /** The registry container's name; undefined when the user runs the registry. */
    public readonly containerName: pulumi.Output<string | undefined>;
    /**
     * The login of the registry the component runs (a secret); undefined when the user runs the
     * registry (`registryUrl`): its credentials are the user's.
     */
    public readonly credentials?: pulumi.Output<RegistryCredentials>;
    /** Where images for this repository are pushed. */
    public readonly registry: RegistryTarget;

    constructor(
        name: string,
        args: LocalModelRegistryArgs,
        opts?: pulumi.ComponentResourceOptions,
    ) {
        super("model-registry:index:LocalModelRegistry", name, {}, opts);

        const port = args.port ?? 5000;
        const image = args.image ?? "registry:2";
        validate(args, port, image);

        let apiUrl: pulumi.Output<string>;
        let server: string;
        let recordKey: string | undefined;
        if (args.registryUrl) {
            const url = new URL(args.registryUrl);
            server = url.host;
            apiUrl = pulumi.output(`${url.protocol}//${url.host}`);
            this.containerName = pulumi.output(undefined);
        } else {
            server = `127.0.0.1:${port}`;
            const base = `${pulumi.getProject()}-${pulumi.getStack()}`.replace(
                /[^A-Za-z0-9_.-]/g,
                "-",
            );
            const registryImage = new docker.RemoteImage(
                `${name}-registry-image`,
                // The image stays when the stack is destroyed: other containers may use it.
                { name: image, keepLocally: true },
                { parent: this },
            );
            const volumeName = `${base}-registry-data`;
            // The published versions live in the volume, whatever port serves them: the
            // histories the guard and the record carry follow the volume, not the port.
            recordKey = `docker-volume:${volumeName}/${args.repositoryName}`;
            const volume = new docker.Volume(
                `${name}-registry-data`,
                { name: volumeName },
                // Published versions live here: destroy leaves them unless forceDestroy is set.
                { parent: this, retainOnDelete: !(args.forceDestroy ?? false) },
            );
            const login = new RegistryLogin(
                `${name}-registry-login`,
                { username: "model-registry" },
                { parent: this },
            );
            this.credentials = secretCredentials(login.username, login.password);
            const container = new docker.Container(
                `${name}-registry`,
                {
                    name: `${base}-registry`,
                    image: registryImage.imageId,
                    ports: [{ internal: 5000, external: port, ip: "127.0.0.1" }],
                    volumes: [{ volumeName: volume.name, containerPath: REGISTRY_DATA_PATH }],
                    envs: [
                        "REGISTRY_STORAGE_DELETE_ENABLED=false",
                        "REGISTRY_AUTH=htpasswd",
                        `REGISTRY_AUTH_HTPASSWD_REALM=${base}-registry`,
                        `REGISTRY_AUTH_HTPASSWD_PATH=${HTPASSWD_PATH}`,
                    ],
                    // Written before the container starts; a new login is a new container.
                    uploads: [{ file: HTPASSWD_PATH, content: login.htpasswd }],
                    restart: "unless-stopped",
                    mustRun: true,
                    // The container counts as created only once the registry answers, and answers
                    // an anonymous request with 401: the guard and the push, which wait for the
                    // container, never race its start, and never reach a registry without auth.
                    // (GNU and busybox wget both print the status line with " 401 ".)
                    healthcheck: {
                        tests: [
                            "CMD-SHELL",
                            "wget -O /dev/null http://127.0.0.1:5000/v2/ 2>&1 | grep -q ' 401 '",
                        ],
                        interval: "1s",
                        timeout: "2s",
                        retries: 30,
                    },
                    wait: true,
                    waitTimeout: 60,
                },
                { parent: this, deleteBeforeReplace: true },
            );
            // Unknown in a preview until the container exists: the guard then looks nothing up.
            apiUrl = container.id.apply(() => `http://${server}`);
            this.containerName = container.name;
        }

        this.repositoryName = pulumi.output(args.repositoryName);
        this.repositoryUri = pulumi.output(`${server}/${args.repositoryName}`);
        this.registry = {
            server,
            repositoryUri: this.repositoryUri,
            apiUrl,
            credentials: this.credentials ?? args.credentials,
            recordKey,
        };
        this.registerOutputs({
            repositoryUri: this.repositoryUri,
            repositoryName: this.repositoryName,
            containerName: this.containerName,
        });
    }
}

function validate(args: LocalModelRegistryArgs, port: number, image: string): void {
    const problems: [string, string | undefined][] = [
        ["repositoryName", checkRepositoryName(args.repositoryName)?.reason],
        [
            "port",
            Number.isInteger(port) && port >= 1 && port <= 65535
                ? undefined
                : "expected a TCP port from 1 to 65535",
        ],
        [
            "image",
            image.trim() !== "" && !/\s/.test(image) ? undefined : "expected an image reference",
        ],
        [
            "registryUrl",
            args.registryUrl === undefined ||
            (/^https?:\/\/[^/\s@]+\/?$/.test(args.registryUrl) && URL.canParse(args.registryUrl))
                ? undefined
                : credentialsInReference(args.registryUrl.split(/[?#]/)[0]).length > 0
                  ? "it holds a user or password (not shown): give them as credentials, and http(s)://<host>[:<port>] here"
                  : "expected http(s)://<host>[:<port>] (a port from 1 to 65535) and nothing else",
        ],
    ];
    for (const [propertyPath, reason] of problems) {
        if (reason) throw new pulumi.InputPropertyError({ propertyPath, reason });
    }
}
