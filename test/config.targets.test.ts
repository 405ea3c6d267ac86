import * as pulumi from "@pulumi/pulumi";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { newStack } from "./support/program";
import { programConfig } from "./support/pulumiCli";
import { isSecret, valueOf } from "./support/pulumiMocks";
import { Raw, errorOf, fixesOf, parse, v } from "./support/config";

describe("registry targets", () => {
    it("defaults to ecr-public and accepts each target", () => {
        expect(parse(v).registry).toBe("ecr-public");
        expect(parse({ ...v, registry: "ecr-private" }).registry).toBe("ecr-private");
        const local = parse({ ...v, registry: "local" });
        expect(local.registry).toBe("local");
        expect(local.localRegistry).toEqual({ image: "registry:2", port: 5000 });
        expect(local.registryUrl).toBeUndefined();
    });

    it.each([
        [
            // kmsKey set to its default is not a setting of another target.
            { registryUrl: "http://127.0.0.1:5000", kmsKey: "" },
            "registryUrl",
            "only read when registry is local (this stack's registry is ecr-public)",
        ],
        [
            { registry: "local", kmsKey: "arn:aws:kms:us-west-2:123456789012:key/abc" },
            "kmsKey",
            "only read when registry is ecr-private",
        ],
        [
            { registry: "local", pushPrincipals: '["arn:aws:iam::123456789012:root"]' },
            "pushPrincipals",
            "a local registry has no IAM principals",
        ],
    ] as [Raw, string, string][])(
        "refuses a setting of another target instead of ignoring it (%j): removed, not set to an example",
        (raw, key, reason) => {
            expect(errorOf({ ...v, ...raw })).toContain(`model-registry:${key}`);
            expect(errorOf({ ...v, ...raw })).toContain(reason);
            expect(fixesOf({ ...v, ...raw })).toEqual([`pulumi config rm --stack dev ${key}`]);
        },
    );

    it("refuses gallery texts and badges on a registry without a gallery", () => {
        const message = errorOf({ ...v, registry: "local", description: "My model" });
        expect(message).toContain("model-registry:description");
        expect(message).toContain("ECR Public gallery");
        expect(message).toContain("Fix: pulumi config rm --stack dev description");
        expect(errorOf({ ...v, registry: "ecr-private", operatingSystems: '["macOS"]' })).toContain(
            "model-registry:operatingSystems",
        );
        // Their defaults, which the CLI writes into every stack, are fine on every target, and
        // so is a value set to its default.
        expect(parse({ ...v, registry: "local" }).registry).toBe("local");
        expect(
            parse({ ...v, registry: "ecr-private", operatingSystems: '["Linux"]' }).registry,
        ).toBe("ecr-private");
    });

    it("takes principals of any partition on ecr-private", () => {
        const cn = '["arn:aws-cn:iam::123456789012:role/ci"]';
        expect(parse({ ...v, registry: "ecr-private", pushPrincipals: cn }).pushPrincipals).toEqual(
            ["arn:aws-cn:iam::123456789012:role/ci"],
        );
    });

    it("takes a registry URL with scheme, host and port only", () => {
        const local = { ...v, registry: "local" };
        expect(parse({ ...local, registryUrl: "http://127.0.0.1:5000/" }).registryUrl).toBe(
            "http://127.0.0.1:5000",
        );
        expect(errorOf({ ...local, registryUrl: "127.0.0.1:5000" })).toContain(
            "Fix: pulumi config set --stack dev registryUrl http://127.0.0.1:5000",
        );
        // Plain http only on this machine: another host gets https, which the next run accepts.
        expect(errorOf({ ...local, registryUrl: "registry.lan:5000" })).toContain(
            "Fix: pulumi config set --stack dev registryUrl https://registry.lan:5000",
        );
        expect(
            errorOf({ ...local, registryUrl: "https://u:p@registry.example:5000/v2" }),
        ).toContain("Fix: pulumi config set --stack dev registryUrl https://registry.example:5000");
    });

    it("needs both credentials, and only for a registry the user runs", async () => {
        const url = { ...v, registry: "local", registryUrl: "http://127.0.0.1:5000" };
        const secret = { secret: "s3cret" };
        expect(errorOf({ ...url, registryUsername: "ci" })).toContain(
            "model-registry:registryPassword is not set: registryUsername is set",
        );
        expect(fixesOf({ ...url, registryUsername: "ci" })).toEqual([
            "pulumi config set --stack dev --secret registryPassword  # it prompts for the value",
        ]);
        expect(errorOf({ ...url, registryPassword: secret })).toContain(
            "model-registry:registryUsername is not set",
        );
        expect(
            errorOf({ ...v, registry: "local", registryUsername: "ci", registryPassword: secret }),
        ).toContain("credentials are only for a registry you run yourself");
        const creds = parse({
            ...url,
            registryUsername: "ci",
            registryPassword: secret,
        }).registryCredentials!;
        expect(creds.username).toBe("ci");
        expect(await valueOf(creds.password)).toBe("s3cret");
        expect(await isSecret(creds.password)).toBe(true);
        // Set without --secret: refused, and not shown.
        const plain = errorOf({ ...url, registryUsername: "ci", registryPassword: "s3cret" });
        expect(plain).toContain(
            "model-registry:registryPassword is set in plain text: a password is kept only as a secret",
        );
        expect(plain).toMatch(/Fix: pulumi config set --stack dev --secret registryPassword$/m);
        expect(plain).not.toContain("s3cret");
    });

    it("removes a password where none is read, and never shows it", () => {
        const message = errorOf({ ...v, registryPassword: { secret: "hunter2-password" } });
        expect(message).toContain("model-registry:registryPassword");
        expect(message).toContain("    Fix: pulumi config rm --stack dev registryPassword");
        expect(message).not.toContain("hunter2");
    });

    it("checks the local registry's port, and takes a KMS key ARN", () => {
        const local = { ...v, registry: "local" };
        expect(parse({ ...local, localRegistryPort: "5055" }).localRegistry.port).toBe(5055);
        for (const port of ["0", "65536", "-1"]) {
            expect(errorOf({ ...local, localRegistryPort: port })).toContain(
                "expected a TCP port from 1 to 65535",
            );
        }
        expect(errorOf({ ...local, localRegistryPort: "50x" })).toBe(
            "Stack 'dev' with configuration key 'localRegistryPort' must be of type 'integer'",
        );
        const key = "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        expect(parse({ ...v, registry: "ecr-private", kmsKey: key }).kmsKey).toBe(key);
    });
});

describe("what must stay on this machine or in the project", () => {
    it("takes plain http:// only for a registry on this machine", () => {
        const local = { ...v, registry: "local" };
        for (const url of ["http://127.0.0.1:5000", "http://localhost:5000", "http://[::1]:5000"]) {
            expect(parse({ ...local, registryUrl: url }).registryUrl).toBe(url);
        }
        const message = errorOf({
            ...local,
            registryUrl: "http://registry.lan:5000",
            registryUsername: "ci",
            registryPassword: { secret: "pw" },
        });
        expect(message).toContain(
            'model-registry:registryUrl = "http://registry.lan:5000": plain http:// is only for a registry on this machine',
        );
        expect(message).toContain(
            "Fix: pulumi config set --stack dev registryUrl https://registry.lan:5000",
        );
    });

    it("refuses a build context or Dockerfile outside the project, symlinks resolved", () => {
        expect(errorOf({ ...v, modelContext: ".." })).toContain(
            'model-registry:modelContext = "..": it resolves to',
        );
        expect(errorOf({ ...v, modelContext: ".." })).toContain("outside the project");
        const link = `.test-link-${process.pid}`;
        fs.symlinkSync(os.tmpdir(), link);
        try {
            expect(errorOf({ ...v, modelContext: link })).toContain(
                `model-registry:modelContext = "${link}": it resolves to ${JSON.stringify(fs.realpathSync(os.tmpdir()))}, outside the project`,
            );
            fs.rmSync(link);
            fs.symlinkSync(path.resolve("model/Dockerfile"), link);
            // A link inside the project to a file inside it is fine.
            expect(parse({ ...v, dockerfile: `../${link}` }).dockerfile).toBe(`../${link}`);
        } finally {
            fs.rmSync(link, { force: true });
        }
        expect(errorOf({ ...v, dockerfile: "../../Dockerfile" })).toContain(
            "model-registry:dockerfile",
        );
    });
});

describe("secrets and credentials never reach a message", () => {
    it.each([
        // On a stack whose registry is not local: refused as another target's setting.
        [{ registryUrl: "http://admin:S3cretPass@reg.example:5000" }, "S3cretPass"],
        // A password with @ or / in it, and one without a scheme.
        [{ registry: "local", registryUrl: "http://admin:p@ss@reg.example:5000/v2" }, "p@ss"],
        [{ registry: "local", registryUrl: "http://admin:pa/ss@reg.example:5000/v2" }, "pa/ss"],
        [{ registry: "local", registryUrl: "admin:secretpw@reg.example:5000" }, "secretpw"],
        // White space in the password, which a URL cannot hold but a typo can.
        [{ registry: "local", registryUrl: "http://user:my secret pw@10.0.0.5:5000" }, "secret pw"],
        [{ registry: "local", registryUrl: "http://user:tab\tpw@10.0.0.5:5000" }, "pw"],
    ])("masks credentials typed into registryUrl (%j)", (raw, secret) => {
        const message = errorOf({ ...v, ...raw });
        expect(message).toContain("model-registry:registryUrl");
        expect(message).toContain("***@");
        expect(message).not.toContain(secret);
    });

    it("shows the URL with its credentials masked, where they were", () => {
        const message = errorOf({
            ...v,
            registry: "local",
            registryUrl: "http://alice:hunter2@registry.example:5000",
        });
        expect(message).toContain('registryUrl = "http://***@registry.example:5000"');
        expect(message).not.toContain("hunter2");
    });

    it("refuses a sourceUrl with a token, which would become a public image label", () => {
        const message = errorOf({
            ...v,
            sourceUrl: "https://gitlab-ci-token:glcbt-SECRET@gitlab.example.com/g/p.git",
        });
        expect(message).toContain("model-registry:sourceUrl");
        expect(message).toContain("org.opencontainers.image.source label");
        expect(message).toContain(
            "Fix: pulumi config set --stack dev sourceUrl https://gitlab.example.com/g/p.git",
        );
        expect(message).not.toContain("glcbt-SECRET");
        // Without credentials it is taken as it is.
        expect(
            parse({ modelVersion: "1.0.0", sourceUrl: "https://gitlab.example.com/g/p.git" })
                .sourceUrl,
        ).toBe("https://gitlab.example.com/g/p.git");
    });

    const gallery = ["description", "aboutText", "usageText"] as const;
    it.each(gallery)(
        "refuses credentials in %s, which the public gallery shows to anyone",
        (key) => {
            for (const url of [
                "https://bob:S3cretPass@m.example/iris",
                "https://m.example/x?token=S3cretPass",
                "HTTPS://bob:S3cretPass@m.example/iris",
                "[weights](https://bob:S3cretPass@m.example/iris)",
                "<https://bob:it's-S3cretPass@m.example/iris>",
                "https://bob:S3c(ret/Pass@m.example/iris",
                "bob:S3cretPass@m.example/iris",
                "ghp_16C7e42F292c6912E7710c838347Ae1S3cret@github.com/o/r",
                "git+https://ghp_16C7e42F292c6912E7710c838347Ae1S3cret@github.com/o/r",
                "https://bob@m.example/a and https://bob:S3cretPass@m.example/b",
                "pip install git+https://ghp_S3cretabcdefghijklmnop1234@github.com/o/r.git@v1.0",
                "https://m.example/model?accessToken=S3cret1234567890xyz",
                "https://maps.example/api/js?key=AIzaSyD-S3cretghijklmnopqrstuvwx12345",
                '<a href="https://m.example/x?a=1&amp;token=S3cret1234567890">',
                "https://bob:$9fKq2S3cret@h.example/x",
                "https://bob:YourS3cret99@h.example/x",
                "https://ghp_S3cretabcdefghijklmnop1234:password@github.com/o/r",
                "curl https://api.example.com/v1/predict?api_key=d41dS3cret8f00b204",
                "?apiKey=9f8e7dS3cret4a3921 or ?access_key=Zx9aQS3cret8dEf",
                "https://m.example/cb?code=Zx9aQ2mB7c8dS3cretGhIjKlMnOp==",
                "https://ci:S3cretPass@blake:3000/acme/iris",
                "https://bob:pa#S3cret1234@m.example/x",
                "HF_TOKEN=hf_SecretabcdefghijklmnopqrstuvwxyzAB python serve.py",
                "or with ghp_S3cretabcdefghijklmnopqrstuvwxyz1234",
                "the key sk-proj-Ab3S3cret_Uv1Wx2Yz3Ab4Cd5 or sk-ant-api03-Ab3S3cret-Uv1Wx2Yz3Ab4",
                "docker run -e AWS_SECRET_ACCESS_KEY=wJalrXUtnS3cretK7MDENG acme/iris",
                "DB_PASSWORD: Tr0ub4dS3cret",
                "password: S3cretPass99",
                '{"HF_TOKEN": "S3cretTokenValue99"}',
                "login --token=S3cretPass99",
                "db: ci:Hunter2S3cret@db.example.com:5432",
                "DB_PASSWORD=CorrectHorseS3cretStaple MYSQL_ROOT_PASSWORD=s3cr3t",
                "POSTGRES_PASSWORD: HunterS3cret2",
                "DB_PASSWORD=CorrectHorseBatteryStaple",
                "DB_PASSWORD=P@ss=w0rdS3cret DB_PASSWORD=Tr0ub4dor(S3cret)x",
                "JWT_SECRET=c2VjcmV0LXZhbHVlLTEyMzQ1Njc4OQ== REDIS_PASSWORD=hunter2",
                "DB_PASSWORD=correct-horse-battery-staple DB_PASSWORD=84729103",
                "password: Pa55=wordS3cret2024",
                "DB_PASSWORD=Hunter2.S3cret99",
                "AWS_SECRET_ACCESS_KEY=Zx8Qp3Lm/Tv7Rw2Ks9Yb/Hn4S3cret6Fg1Ce5Ua0Xi2O python serve.py",
                "HF_TOKEN: Zx8Qp3Lm/Tv7RwS3cret",
                "DB_PASSWORD=Troubador(S3cret)x REDIS_PASSWORD=Hunter(S3cret) DB_PASSWORD=/hunterS3cret",
                "export HF_TOKEN=my_Zx8Qp3Lm7TvS3cret",
                "password: `Zx8Qp3LmS3cret` or HF_TOKEN=`Zx8Qp3LmS3cret`",
                "password: ``Zx8Qp3LmS3cret99`` or Set ``HF_TOKEN``=``Zx8Qp3LmS3cret``",
                "DB_PASSWORD=tr0ub4dorS3cret[3] api_key: zx8qp3lmS3cret(Tv2Rw9Ks)",
                "DB_PASSWORD=Hidden",
                "DB_PASSWORD=`Zx8Qp3Lm S3cret99`",
                `docker login -u AWS -p eyJwYXlsb2FkIjoiS3cret${"Ab1+/".repeat(20)}== public.ecr.aws`,
                'curl -H "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJTM2NyZXQifQ.S3cretSig_abc123"',
                `docker login -u AWS -peyJwYXlsb2FkIjoiS3cret${"Ab1+/".repeat(20)}==`,
                `{"auths":{"public.ecr.aws":{"auth":"QVdTOmV5SndZWGxzYjJGa0lqb2S3cret${"Ab1+/".repeat(20)}"}}}`,
                "https://m.example/x?authorization=Bearer%20eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJTM2NyZXQifQ.S3cretSig_abc123",
                "[clone](https%3A%2F%2Foauth2%3Aglpat-S3cretAbcdefghij1234%40gitlab.com)",
                "Bearer%2520eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJTM2NyZXQifQ.S3cretSig_abc123",
            ]) {
                const message = errorOf({ ...v, [key]: `Weights: ${url} (v1)` });
                expect(message).toContain(`model-registry:${key} is set (not shown): it holds`);
                expect(message).toMatch(
                    /it holds credentials \(a password or a token; the first at character \d+\) that the ECR Public gallery/,
                );
                expect(message).not.toContain("S3cret");
            }
        },
    );

    it.each(gallery)("takes %s with no real credentials as it is", (key) => {
        for (const text of [
            "Mail bob@example.com, or bob@example.com.",
            `docker pull public.ecr.aws/a/m@sha256:${"a".repeat(64)}.`,
            "pip install git+https://github.com/acme/iris.git@v1.2.0",
            "https://www.npmjs.com/package/@acme/iris and https://mastodon.social/@acme",
            "git clone git@github.com:acme/iris.git, or ssh://git@github.com/acme/iris.git",
            "https://bob@bitbucket.org/acme/iris.git",
            "https://m.example:8080/x@y",
            "https://m.example/x?keywords=a&key=models&auth=oidc&page_token=2#key=abc123",
            "curl 'https://m.example/x?api_key=YOUR_API_KEY&token=$HF_TOKEN'",
            "https://user:password@m.example/x and https://${GITHUB_TOKEN}@github.com/o/r",
            "pip install git+https://USER:TOKEN@github.com/o/r.git@v1.0 (or <user>:<token>@)",
            "[email us](mailto:alice@example.com), xmpp:team@chat.example.com, Maintainer:alice@example.com",
            `docker pull python:3.11@sha256:${"a".repeat(64)} or model:1.0@sha256:4f3c`,
            "curl https://m.example/x?access_token=ACCESS_TOKEN or ?access_token=Your_Access_Token",
            "git clone https://ci:$token@git.example.com/o/r, or ?token=$hf_token",
            "https://gallery.example/search?key=iris-classifier-v2-2024",
            "Trained with sk-learn-gradient-boosting-v2 pipelines (https://github.com/acme/churn-sk-learn-gradient-boosting)",
            "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE GH_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "CACHE_KEY=model-cache-v2 HF_TOKEN=$HF_TOKEN",
            "REGISTRY_PASSWORD: ${{ secrets.REGISTRY_PASSWORD }}; HF_TOKEN=${HF_TOKEN:-}",
            'DOCKER_PASSWORD=$(aws ecr-public get-login-password) PASSWORD="$(cat /run/pw)"',
            "HF_TOKEN: optional, for gated models. API_KEY: required. SECRET: (none)",
            "DB_PASSWORD: see your vault. PASS: accuracy above 0.9. POSTGRES_PASSWORD=postgres",
            "OPENAI_API_KEY=sk-your-key-here HF_TOKEN=hf_your_token_here, mailto:alice2024@example.com",
            "token: gpt2-medium, token: bert-base-uncased2, token: v1.2.3-beta1",
            "max_token: 512tokens, num_pass: 10epochs, SECRET_KEY=changeme",
            "https://github.com/acme/sk-learn_iris_classifier_v2",
            "docker run -e POSTGRES_PASSWORD=example postgres; MINIO_ROOT_PASSWORD=minioadmin",
            "MYSQL_ALLOW_EMPTY_PASSWORD=true REQUIRE_PASSWORD=false KC_CLIENT_SECRET=none",
            "docker buildx build --secret=id=hf_token,src=.hf .; DB_PASSWORD=/run/secrets/db",
            "python train.py --num_pass=1000; connect(password=os.environ['DB_PASSWORD'])",
            "Client(password=args.password), client_secret=settings.CLIENT_SECRET",
            "pass: epoch12 then stop; token: Llama3 chat template; api_key: abc123",
            "A JWT starts with eyJhbGciOiJIUzI1NiJ9 and an ECR token with eyJwYXlsb2FkIjoi.",
            "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.your-signature-here or ….SIGNATURE_GOES_HERE",
            `An image: data:image/png;base64,QUJD/eyJwYXlsb2FkIjoiQUJD${"QUJD".repeat(20)}`,
            "next_token = logits.argmax(-1); pad_token = tokenizer.convert_ids_to_tokens(0)",
            "SECRET_KEY = secrets.token_hex(32); client = Client(url, password=sys.argv[1])",
            "client_secret=secrets[0], password=os.getenv(DB_PASS)",
            "MYSQL_ROOT_PASSWORD=my-secret-pw GF_SECURITY_ADMIN_PASSWORD=grafana",
            "Set `token: gpt2-medium` and `max_token: 512tokens`; HF_TOKEN: required",
            "next_token = outputs.logits[0].argmax(-1); torch.argmax(outputs.logits[0, -1])",
            "SECRET_KEY=os.urandom(24).hex() JWT_SECRET=hashlib.sha256(seed).hexdigest()",
            "const password = getPassword(); DB_PASSWORD=Path(secret_file).read_text()",
            "client_secret=vault.read(path).data; DB_PASSWORD=REDACTED POSTGRES_PASSWORD=REPLACEME",
            "export DB_PASSWORD=`openssl rand -hex 16`; JWT_SECRET=`gcloud secrets versions access 1`",
            "JWT_SECRET=sha256(seed) password=md5(salt) SECRET_KEY=b2a_hex(os.urandom(16))",
            "DB_PASSWORD=b64decode(blob) DB_PASSWORD=Redacted DB_PASSWORD=ReplaceMe",
        ]) {
            expect(parse({ ...v, [key]: text }).catalog[key]).toBe(text);
        }
    });

    it("takes names that only resemble variables in a label", () => {
        for (const sourceUrl of [
            "https://github.com/acme/iris/blob/main/README.md#:~:text=Set,HF_TOKEN:%20required",
            "https://example.org/wiki/Model:api_key:v2",
        ]) {
            expect(parse({ ...v, sourceUrl }).sourceUrl).toBe(sourceUrl);
        }
        expect(parse({ ...v, modelRevision: "pass:2" }).modelRevision).toBe("pass:2");
        for (const sourceUrl of [
            "https://example.org/wiki/Model:api_key:v2.1",
            "https://example.org/x,pass:v1.5",
            "https://github.com/acme/iris#:~:text=Set,HF_TOKEN:required",
        ]) {
            expect(parse({ ...v, sourceUrl }).sourceUrl).toBe(sourceUrl);
        }
    });

    it("masks each credential whole, even one that holds another", () => {
        // A gallery text refused for its length shows its value, with every credential masked;
        // one with credentials that look real is not shown at all.
        const long = errorOf({
            ...v,
            description: `Mirror ci:hunter@registry.example.com ${"x".repeat(1100)}`,
        });
        expect(long).toContain('description = "Mirror ***@registry.example.com xxx');
        const hidden = errorOf({
            ...v,
            usageText: `DB_PASSWORD=Tr0ub4dor-3x AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG ${"x".repeat(26000)}`,
        });
        expect(hidden).toContain("usageText is set (not shown): it is 26");
        expect(hidden).not.toMatch(/Tr0ub4dor|wJalr/);
        const source = errorOf({
            ...v,
            sourceUrl: "https://dep@m.example/x?private_token=dep-S3cretPass",
        });
        expect(source).toContain('sourceUrl = "https://***@m.example/x?private_token=***"');
        const both = errorOf({
            ...v,
            sourceUrl: "https://bob:pw12345@h.example/x?token=abcd@efghS3cretijklmnop",
        });
        expect(both).toContain('= "https://***@h.example/x?token=***"');
        for (const registryUrl of [
            '"https://bob:S3cretpw@registry.example.com"',
            "\u200bhttps://bob:S3cretpw@registry.example.com",
            "https://ci:S3cretPass@blake:5000",
            "https://bob:pa#S3cret1234@registry.example.com",
        ]) {
            expect(errorOf({ ...v, registry: "local", registryUrl })).not.toContain("S3cret");
        }
        for (const sourceUrl of [
            "git+https://ghp_S3cretabcdefghijklmnop1234@github.com/o/r.git@v1.0",
            "ghp_16C7e42F292c6912E7@github.com",
            "ghp_16C7e42F292c6912E7@localhost:3000/o/r",
        ]) {
            expect(errorOf({ ...v, sourceUrl })).not.toContain("ghp_16C7e42F292c6912E7");
        }
    });

    it("tells a gallery text's other problems, and on another registry only that it is not read", () => {
        const long = errorOf({
            ...v,
            description: `Contact: bob@acme.example. ${"x".repeat(1100)}`,
        });
        expect(long).toContain("ECR Public allows at most 1024");
        const privateEcr = errorOf({
            ...v,
            registry: "ecr-private",
            description: "https://bob:S3cretPass@m.example/iris",
        });
        expect(privateEcr).toContain("(1 problem)");
        expect(privateEcr).toContain("only read when registry is ecr-public");
        expect(privateEcr).not.toContain("S3cret");
    });

    it.each([
        ["a short secret value", { promoteFrom: { secret: "qa" } }, /"qa"/],
        [
            "another key's secret (the context)",
            { modelContext: { secret: "config" }, dockerfile: "No.dockerfile" },
            /config\//,
        ],
        ["a secret's part", { repositoryName: { secret: "team/Qmodel" } }, /'Q'|Qmodel/],
        ["credentials in a reason", { modelContext: "https://bob:tok3n@github.com/o/r" }, /tok3n/],
        ["credentials in a fix", { modelRevision: " bob:tok3n@abc " }, /tok3n/],
        ["a variable in a base image", { baseImage: "python:3.12 HF_TOKEN=S3cretTok99" }, /S3cret/],
        ["a variable in a revision", { modelRevision: "password=S3cretPass99" }, /S3cret/],
        [
            "a lower-case key in a label",
            { sourceUrl: "https://github.com/a/i;api_key=correcthorsebattery" },
            /horse/,
        ],
        ["a quoted password in a revision", { modelRevision: "password=`S3cretPass99`" }, /S3cret/],
        ["a password in inline code", { modelRevision: "password=``S3cretPass99``" }, /S3cret/],
        ["a passphrase in backticks", { modelRevision: "password=`Hunter2Sec ret`" }, /Hunter2Sec/],
        [
            "a numeric password in a label",
            { sourceUrl: "https://github.com/a/i;password=84729103" },
            /84729103/,
        ],
        [
            "a short token in a label",
            { sourceUrl: "https://github.com/a/i;token=a1b2c3d" },
            /a1b2c3d/,
        ],
        [
            "a UUID key in a label",
            { sourceUrl: "https://github.com/a/i;api_key=d3b07384-d9a0-4c9f-8b1a-0e2c3f4a5b6c" },
            /d9a0-4c9f/,
        ],
        [
            "a variable with a / in a base image",
            { baseImage: "python:3.12 --build-arg API_KEY=Zx8Qp3Lm/S3cret2Ks9Yb" },
            /S3cret/,
        ],
        [
            "a variable in a source URL",
            { sourceUrl: "https://github.com/acme/iris;password=S3cretPass99" },
            /S3cret|the reason is not shown/,
        ],
        [
            "a token in a path too long for the system",
            { dockerfile: `${"D".repeat(250)}?token=S3cretTokenValue99` },
            /S3cret/,
        ],
        [
            "a token as a revision",
            { modelRevision: "ghp_S3cretabcdefghijklmnopqrstuvwxyz1234" },
            /S3cret/,
        ],
        ["credentials a suggestion rewrote", { repositoryName: "Bob:Tok3n@Team/Model" }, /tok3n/i],
        ["a token in a path", { modelContext: "https://ghp_T0KEN123@github.com/o/r" }, /T0KEN/],
        [
            "a token as a user, with no scheme",
            { sourceUrl: "ghp_T0KEN123@github.com/o/r" },
            /T0KEN/,
        ],
        [
            "an AWS secret with a / in a source URL",
            {
                sourceUrl:
                    "https://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYKEY@git.example.com/o/r",
            },
            /wJalr|AKIA/,
        ],
        [
            "a password after a backslash in a source URL",
            { sourceUrl: "https://git.example.com\\@bob:S3cretPass@h.example/x" },
            /S3cret/,
        ],
        [
            "a password in a gallery badge",
            { architectures: '["https://bob:S3cretPw@h.x/y"]' },
            /S3cret/,
        ],
        [
            "a password with # in a source URL",
            { sourceUrl: "https://bob:pa#ss1234@git.example.com/o/r" },
            /ss1234/,
        ],
        ["a secret context, normalized", { modelContext: { secret: "/ab/./cd" } }, /ab\/cd/],
        ["a query's signature", { sourceUrl: "https://h.example/o?X-Amz-Signature=5ig " }, /5ig/],
        [
            "credentials in another key's value",
            {
                dockerfile: "/abs/Dockerfile",
                modelContext: "https://bob:S3cretPass@github.com/a/m",
            },
            /S3cret/,
        ],
        [
            "a password in one item of a list",
            {
                architectures: JSON.stringify([
                    "me@home",
                    `https://bob:S3cretPass@h.example/${"x".repeat(40)}`,
                ]),
            },
            /S3cret/,
        ],
        [
            "a password with non-ASCII letters",
            { repositoryName: "bob:Pässwörd24@team/model" },
            /ssw|rd24/,
        ],
        [
            "a signature in a path",
            { modelContext: "https://a.example/c?sv=1&sig=Zx9YwQ2" },
            /Zx9YwQ2/,
        ],
        ["a passwd in a path", { modelContext: "https://h.example/x?passwd=hunter2" }, /hunter2/],
        [
            "a token a redacted fix kept",
            { sourceUrl: "https://bob:S3cretPass@gitlab.com/o/r?private_token=glpat-Ab12" },
            /glpat|S3cret/,
        ],
    ] as [string, Raw, RegExp][])("never shows %s", (_name, raw, secret) => {
        expect(errorOf({ ...v, ...raw })).not.toMatch(secret);
    });

    it("a secret list's fix sets its items as secrets; a pinned tag@digest is no credential", () => {
        const list = errorOf({ ...v, pushPrincipals: { secret: "zq" } }, { skipValidation: true });
        expect(list).toContain("set --stack dev --secret --path 'pushPrincipals[");
        expect(list).not.toContain("zq");
        const pinned = `python:3.12-slim@sha256:${"a".repeat(64)}`;
        expect(errorOf({ ...v, baseImage: pinned, platform: "x86_64" })).not.toContain("***");
        // A digest too short is told as such, not hidden as credentials.
        const short = errorOf({ ...v, baseImage: "python:3.11@sha256:abc123" });
        expect(short).toContain('baseImage = "python:3.11@sha256:abc123"');
        expect(short).not.toContain("the reason is not shown");
    });

    it("refuses a sourceUrl with a token in its query, which would become a public label", () => {
        const url = "https://gitlab.example.com/g/p?private_token=glpat-XYZ";
        const message = errorOf({ modelVersion: "1.0.0", sourceUrl: url });
        expect(message).toContain("it holds credentials");
        expect(message).not.toContain("glpat-XYZ");
        expect(message).toContain(
            "Fix: pulumi config set --stack dev sourceUrl https://gitlab.example.com/g/p",
        );
        // A parameter that only contains such a word is no credential.
        const plain = "https://gitlab.example.com/g/p?keywords=iris";
        expect(parse({ modelVersion: "1.0.0", sourceUrl: plain }).sourceUrl).toBe(plain);
    });

    it("a token in an scp-form remote's query is not carried into the fix", () => {
        const url = "git@github.com:acme/model.git?private_token=glpat-XYZ";
        const message = errorOf({ modelVersion: "1.0.0", sourceUrl: url });
        expect(message.split("Fix: ")[1]).not.toContain("glpat-XYZ");
    });

    it("masks a user and password typed into any value, not into a digest", () => {
        const from = errorOf({ ...v, promoteFrom: "bob:tok3n@registry.example.com/team/model" });
        expect(from).not.toContain("tok3n");
        const digest = `sha256:${"a".repeat(64)}`;
        const image = errorOf({ ...v, baseImage: `bob:tok3n@registry.example/Base@${digest}` });
        expect(image).not.toContain("tok3n");
        expect(image).toContain("***@registry.example/Base@sha256:");
    });

    it("moves a misspelt key set with --secret as a secret", () => {
        const message = errorOf({ ...v, sourceURL: { secret: "https://example.com/x" } });
        expect(message).toContain(
            'Fix: pulumi config set --stack dev --secret sourceUrl -- "$(pulumi config get --stack dev sourceURL)"',
        );
    });

    it("a git remote in scp form is not taken for credentials: its web address is suggested", () => {
        const message = errorOf({
            modelVersion: "1.0.0",
            sourceUrl: "git@github.com:acme/model.git",
        });
        expect(message).toContain("a git remote in scp form (user@host:path), not a URL");
        expect(message).not.toContain("credentials");
        expect(message).toContain(
            "Fix: pulumi config set --stack dev sourceUrl https://github.com/acme/model",
        );
    });

    it("never shows a value set with --secret, nor a fix derived from it", () => {
        const message = errorOf({
            ...v,
            registry: "local",
            registryUrl: { secret: "reg.example.internal:5000" },
        });
        expect(message).toContain("model-registry:registryUrl is set (a secret):");
        expect(message).not.toContain("reg.example.internal");
        // Nor a part of it that a reason quotes (the repository path, a list item).
        const image = errorOf({ ...v, baseImage: { secret: "ghcr.io/acme/Private-Base:tok3n" } });
        expect(image).toContain(
            "it is not valid; the reason is not shown, as it would show a secret or credentials.",
        );
        // Set again as a secret.
        expect(image).toContain(
            "Fix: pulumi config set --stack dev --secret baseImage  # it prompts for the value",
        );
        expect(image).not.toMatch(/acme|Private|tok3n/);
        const item = "s3cr3t-item-".repeat(5);
        // The CLI model has no secret list item (`set --secret --path 'k[0]'`); the program gets
        // the same text, the list as JSON with the key secret, past the model's type check.
        const secretList = { architectures: { secret: JSON.stringify([item]) } };
        const list = errorOf({ ...v, ...secretList }, { skipValidation: true });
        expect(list).toContain("the reason is not shown");
        expect(list).not.toContain("s3cr3t");
        // An escaped quote of it (a path with a backslash) counts too.
        const path = errorOf({ ...v, modelContext: { secret: "dev\\hunter2pw" } });
        expect(path).not.toContain("hunter2pw");
    });

    it("reads which keys are secret from the engine, as pulumi up passes them", async () => {
        jest.resetModules();
        const sdk: typeof pulumi = await import("@pulumi/pulumi");
        await sdk.runtime.setMocks(
            { newResource: () => ({ id: "x", state: {} }), call: () => ({}) },
            "model-registry",
            "dev",
            false,
        );
        const cli = programConfig(
            newStack({
                modelVersion: "1.0.0",
                sourceUrl: { secret: "not a url with a private host secret.example" },
            }),
            "dev",
        );
        expect(cli.secretKeys).toEqual(["model-registry:sourceUrl"]);
        sdk.runtime.setAllConfig(cli.config, cli.secretKeys);
        const { loadConfig } = await import("../config");
        let message = "";
        try {
            loadConfig();
        } catch (e) {
            message = (e as Error).message;
        }
        expect(message).toContain("model-registry:sourceUrl is set (a secret):");
        expect(message).not.toContain("secret.example");
    });

    it("a misspelt list key: read its items before it is removed", () => {
        const message = errorOf({ modelVersion: "1.0.0", pushPrincipal: "x" });
        const fix = message.split("Fix: ")[1] ?? "";
        expect(fix.indexOf("pulumi config get --stack dev pushPrincipal")).toBeGreaterThanOrEqual(
            0,
        );
        expect(fix.indexOf("pulumi config get --stack dev pushPrincipal")).toBeLessThan(
            fix.indexOf("pulumi config rm --stack dev pushPrincipal"),
        );
        // One index per item: setting [0] for each would keep only the last.
        expect(fix).toContain(
            "--path 'pushPrincipals[<n>]' <principal-arn> for item n = 0, 1, ...",
        );
    });

    it("reports keys named like Object's own properties as unknown", () => {
        const message = errorOf({ modelVersion: "1.0.0", constructor: "x" });
        expect(message).toContain(
            "model-registry:constructor is set: this program reads no such key",
        );
    });
});
