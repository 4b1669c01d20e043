import { createRoute, z } from "@hono/zod-openapi";
import { sshPublicKeyLine } from "../git/objects/sshsig";
import { createRouter } from "../http/router";
import { bytesToHex } from "../lib/hex";
import { hubSigningKey } from "../secrets/hub-signing-key";

const SigningKeySchema = z
  .object({
    algorithm: z.literal("ed25519"),
    publicKey: z.string().openapi({ description: "Raw public key, hex (what sidecars receive as `hubPublicKey`)" }),
    openssh: z.string().openapi({ description: "The key as an OpenSSH public key line, for `allowed_signers`" }),
  })
  .openapi("SigningKey");

/** The hub's public signing key: commits the hub writes are SSH-signed with it (docs/git.md). */
export const signingKeyRoutes = createRouter().openapi(
  createRoute({
    method: "get",
    path: "/api/signing-key",
    security: [],
    tags: ["System"],
    summary: "The hub's public signing key",
    description:
      "Commits the hub writes (the first commit of every repository) carry an SSH signature by this key. " +
      "Public; no authentication.",
    responses: {
      200: { description: "The key", content: { "application/json": { schema: SigningKeySchema } } },
    },
  }),
  async (c) => {
    const { publicKey } = await hubSigningKey(c.env.SECRETS_KEY);
    return c.json(
      {
        algorithm: "ed25519" as const,
        publicKey: bytesToHex(publicKey),
        openssh: sshPublicKeyLine(publicKey, c.env.HUB_NAME ?? "agent-hub"),
      },
      200,
    );
  },
);
