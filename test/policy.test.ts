import {
    PolicyResource,
    imageTagsAreSemver,
    isProdStack,
    privateEcrTagsImmutable,
    prodRepositoriesKeepImages,
    prodStacksOnlyPromote,
    stackOf,
    tagOf,
} from "../policy/rules";
import { IMAGE, PRIVATE_REPO, REPO } from "./support/pulumiMocks";

function violations(
    rule: (r: PolicyResource, report: (m: string) => void) => void,
    resource: PolicyResource,
): string[] {
    const found: string[] = [];
    rule(resource, (m) => found.push(m));
    return found;
}

const urn = (stack: string, type: string) => `urn:pulumi:${stack}::model-registry::${type}::x`;

const image = (imageName: unknown): PolicyResource => ({
    type: IMAGE,
    props: { imageName },
    urn: urn("dev", IMAGE),
});

describe("image-tags-are-semver", () => {
    it.each([
        "public.ecr.aws/a1/model:1.0.0",
        "localhost:5000/ml/iris:2.1.0-rc.1",
        "r.example.com/m:1.0.0@sha256:" + "a".repeat(64),
    ])("passes %s", (name) => expect(violations(imageTagsAreSemver, image(name))).toEqual([]));

    it.each([
        ["public.ecr.aws/a1/model:latest", /"latest".*moving tag/],
        ["public.ecr.aws/a1/model", /has no tag, which means "latest"/],
        ["localhost:5000/ml/iris", /has no tag/],
        ["public.ecr.aws/a1/model:v1.0.0", /leading "v"/],
        ["public.ecr.aws/a1/model:prod", /not a SemVer version/],
    ])("fails %s", (name, message) => {
        const found = violations(imageTagsAreSemver, image(name));
        expect(found).toHaveLength(1);
        expect(found[0]).toMatch(message);
    });

    it("leaves other resources and unknown names alone", () => {
        expect(violations(imageTagsAreSemver, image(undefined))).toEqual([]);
        expect(
            violations(imageTagsAreSemver, {
                type: REPO,
                props: { imageName: "x:latest" },
                urn: "",
            }),
        ).toEqual([]);
    });

    it("reads tags after a registry port, and not from a digest", () => {
        expect(tagOf("localhost:5000/ml/iris")).toBeUndefined();
        expect(tagOf("localhost:5000/ml/iris:1.2.3")).toBe("1.2.3");
        expect(tagOf("r/m@sha256:abc")).toBeUndefined();
    });
});

describe("prod-repositories-keep-images", () => {
    // The stack's forceDestroy is the ECR Public repository's forceDestroy, and the private ECR
    // repository's forceDelete (@pulumi/aws's names; PrivateModelRepository sets forceDelete).
    it.each([
        [REPO, "forceDestroy"],
        [PRIVATE_REPO, "forceDelete"],
    ])("fails %s with %s in prod stacks", (type, property) => {
        for (const stack of ["prod", "production", "prod-eu"]) {
            const found = violations(prodRepositoriesKeepImages, {
                type,
                props: { [property]: true },
                urn: urn(stack, type),
            });
            expect(found).toHaveLength(1);
            expect(found[0]).toContain(`stack "${stack}" is a production stack`);
        }
        const other = property === "forceDelete" ? "forceDestroy" : "forceDelete";
        const props = { [property]: false, [other]: true }; // a property this type does not have
        expect(
            violations(prodRepositoriesKeepImages, { type, props, urn: urn("prod", type) }),
        ).toEqual([]);
    });

    it("passes prod without forceDestroy, and forceDestroy outside prod", () => {
        expect(
            violations(prodRepositoriesKeepImages, {
                type: REPO,
                props: { forceDestroy: false },
                urn: urn("prod", REPO),
            }),
        ).toEqual([]);
        expect(
            violations(prodRepositoriesKeepImages, {
                type: REPO,
                props: {},
                urn: urn("prod", REPO),
            }),
        ).toEqual([]);
        for (const stack of ["dev", "staging", "products-dev"]) {
            expect(
                violations(prodRepositoriesKeepImages, {
                    type: REPO,
                    props: { forceDestroy: true },
                    urn: urn(stack, REPO),
                }),
            ).toEqual([]);
        }
    });

    it.each(["Prod", "PROD", "Production", "Prod-EU", "PRODUCTION.us"])(
        "counts %s as a production stack (the pattern ignores case)",
        (stack) => {
            const found = violations(prodRepositoriesKeepImages, {
                type: REPO,
                props: { forceDestroy: true },
                urn: urn(stack, REPO),
            });
            expect(found).toHaveLength(1);
            expect(found[0]).toContain(`stack "${stack}" is a production stack`);
            expect(
                violations(prodStacksOnlyPromote, {
                    ...image("public.ecr.aws/a/m:1.0.0"),
                    urn: urn(stack, IMAGE),
                }),
            ).toHaveLength(1);
        },
    );

    it("matches a configured pattern without regard to case too, and still not other stacks", () => {
        expect(isProdStack("LIVE", "^live$")).toBe(true);
        expect(isProdStack("Products-Dev")).toBe(false);
        expect(isProdStack("Staging")).toBe(false);
    });

    it("takes the production pattern from the pack's config", () => {
        const r = {
            type: REPO,
            props: { forceDestroy: true },
            urn: urn("live", REPO),
        };
        const found: string[] = [];
        prodRepositoriesKeepImages(r, (m) => found.push(m), "^live$");
        expect(found).toHaveLength(1);
        expect(stackOf(r.urn)).toBe("live");
    });
});

describe("private-ecr-tags-immutable", () => {
    it("passes IMMUTABLE", () => {
        expect(
            violations(privateEcrTagsImmutable, {
                type: PRIVATE_REPO,
                props: { imageTagMutability: "IMMUTABLE" },
                urn: "",
            }),
        ).toEqual([]);
    });

    it.each([["MUTABLE"], ["MUTABLE_WITH_EXCLUSION"], [undefined]])("fails %s", (value) => {
        const found = violations(privateEcrTagsImmutable, {
            type: PRIVATE_REPO,
            props: { imageTagMutability: value },
            urn: "",
        });
        expect(found).toHaveLength(1);
        expect(found[0]).toContain('set it to "IMMUTABLE"');
    });

    it("does not apply to ECR Public, which has no such setting", () => {
        expect(violations(privateEcrTagsImmutable, { type: REPO, props: {}, urn: "" })).toEqual([]);
    });
});

describe("prod-stacks-only-promote", () => {
    it("reports a docker.Image (a build) in a production stack, with the fix", () => {
        const found = violations(prodStacksOnlyPromote, {
            type: IMAGE,
            props: { imageName: "public.ecr.aws/a/m:1.0.0" },
            urn: urn("prod", IMAGE),
        });
        expect(found).toHaveLength(1);
        expect(found[0]).toContain("pulumi config set promoteFrom staging");
    });

    it("leaves builds outside production, and promotions anywhere, alone", () => {
        const promotion = "pulumi-nodejs:dynamic/model-registry:ImagePromotion";
        expect(violations(prodStacksOnlyPromote, image("public.ecr.aws/a/m:1.0.0"))).toEqual([]);
        expect(
            violations(prodStacksOnlyPromote, {
                type: promotion,
                props: {},
                urn: urn("prod", promotion),
            }),
        ).toEqual([]);
    });
});

describe("the policy pack", () => {
    it("registers the rules (three mandatory, one advisory), wired to the rule functions and the pack config", async () => {
        let captured: { policies: any[] } | undefined;
        jest.resetModules();
        jest.doMock("@pulumi/policy", () => ({
            PolicyPack: class {
                constructor(name: string, args: { policies: any[] }) {
                    expect(name).toBe("model-registry");
                    captured = args;
                }
            },
        }));
        await import("../policy/index");
        const policies = captured?.policies ?? [];
        expect(policies.map((p) => [p.name, p.enforcementLevel])).toEqual([
            ["image-tags-are-semver", "mandatory"],
            ["prod-repositories-keep-images", "mandatory"],
            ["private-ecr-tags-immutable", "mandatory"],
            ["prod-stacks-only-promote", "advisory"],
        ]);
        const run = (i: number, resource: PolicyResource, config: Record<string, unknown> = {}) => {
            const found: string[] = [];
            policies[i].validateResource({ ...resource, getConfig: () => config }, (m: string) =>
                found.push(m),
            );
            return found;
        };
        expect(run(0, image("public.ecr.aws/a/m:latest"))).toHaveLength(1);
        const prodRepo = {
            type: REPO,
            props: { forceDestroy: true },
            urn: urn("prod", REPO),
        };
        expect(run(1, prodRepo, { prodStackPattern: "^prod$" })).toHaveLength(1);
        expect(run(1, prodRepo, { prodStackPattern: "^live$" })).toHaveLength(0);
        expect(policies[1].configSchema.properties.prodStackPattern.default).toBe(
            "^prod(uction)?([-_.].*)?$",
        );
        expect(run(2, { type: PRIVATE_REPO, props: {}, urn: "" })).toHaveLength(1);
        const prodImage = { ...image("public.ecr.aws/a/m:1.0.0"), urn: urn("live", IMAGE) };
        expect(run(3, prodImage, { prodStackPattern: "^live$" })).toHaveLength(1);
        expect(run(3, prodImage)).toHaveLength(0);
        jest.dontMock("@pulumi/policy");
    });
});
