import { createRoute, z } from "@hono/zod-openapi";
import { createTrust, deleteTrust, listTrusts, type TrustView } from "../catalog/federation";
import { getDb } from "../db/client";
import { federationDirections } from "../db/schema";
import { iso } from "../http/format";
import { idResource, requireGrant } from "../http/middleware/require-grant";
import {
  errors,
  jsonBody,
  jsonRequest,
  noContent,
  PageQuerySchema,
  pageOf,
  pathParam,
  TenantParams,
  Timestamp,
} from "../http/responses";
import { createRouter } from "../http/router";

const Direction = z.enum(federationDirections).openapi({
  description:
    "`outbound`: this tenant trusts the target (the target's members can discover this tenant's offerings); " +
    "`inbound`: this tenant expects the target to trust it (exposes nothing by itself); `bilateral`: both",
});

export const FederationTrustSchema = z
  .object({
    id: z.string(),
    tenantId: z.string().openapi({ description: "The target tenant" }),
    tenantName: z.string(),
    tenantDomain: z.string(),
    direction: Direction,
    createdAt: Timestamp,
  })
  .openapi("FederationTrust");

function formatTrust(t: TrustView) {
  return { ...t, createdAt: iso(t.createdAt) };
}

const CreateTrustSchema = z
  .object({
    targetTenantId: z.string().min(1).max(128).openapi({ example: "tnt_0123456789abcdef0123456789abcdef" }),
    direction: Direction,
  })
  .openapi("CreateFederationTrust");
const TrustParams = TenantParams.extend({
  targetTenantId: pathParam("targetTenantId", "tnt_0123456789abcdef0123456789abcdef"),
});
// Trusts change what other tenants can see of this one: managing them is managing the tenant.
const tenantResource = idResource("tenant", "tenantId");

export const federationRoutes = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/federation",
      tags: ["Federation"],
      summary: "List this tenant's federation trusts",
      description: "Needs `tenant:<id>` read.",
      middleware: [requireGrant(tenantResource, "read")] as const,
      request: { params: TenantParams, query: PageQuerySchema },
      responses: {
        200: jsonBody(pageOf(FederationTrustSchema, "FederationTrustPage"), "A page of trusts"),
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const page = await listTrusts(getDb(c.env), c.get("tenant").id, c.req.valid("query"));
      return c.json({ data: page.data.map(formatTrust), nextCursor: page.nextCursor }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/api/tenants/{tenantId}/federation",
      tags: ["Federation"],
      summary: "Trust another tenant",
      description:
        "Needs `tenant:<id>` manage. The target must exist (404) and differ from this tenant (400); one trust per " +
        "target (409). A tenant's offerings are searchable by another tenant only when the offering tenant holds " +
        "an `outbound` or `bilateral` trust toward it.",
      middleware: [requireGrant(tenantResource, "manage")] as const,
      request: { params: TenantParams, ...jsonRequest(CreateTrustSchema) },
      responses: {
        201: jsonBody(FederationTrustSchema, "The new trust"),
        ...errors(400, 401, 403, 404, 409),
      },
    }),
    async (c) => c.json(formatTrust(await createTrust(getDb(c.env), c.get("tenant").id, c.req.valid("json"))), 201),
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/api/tenants/{tenantId}/federation/{targetTenantId}",
      tags: ["Federation"],
      summary: "Withdraw the trust toward a tenant",
      description: "Needs `tenant:<id>` manage.",
      middleware: [requireGrant(tenantResource, "manage")] as const,
      request: { params: TrustParams },
      responses: { ...noContent, ...errors(401, 403, 404) },
    }),
    async (c) => {
      await deleteTrust(getDb(c.env), c.get("tenant").id, c.req.valid("param").targetTenantId);
      return c.body(null, 204);
    },
  );
