import { createRoute, z } from "@hono/zod-openapi";
import { listApprovals, tenantsDecidedBy } from "../authz/approvals";
import { getDb } from "../db/client";
import { mapPage } from "../db/pagination";
import { agentStatuses, instanceStatuses, principalKinds, principalStatuses, sessionStatuses } from "../db/schema";
import { audit } from "../http/audit";
import { iso, isoOrNull } from "../http/format";
import { requireUser, signedInUser } from "../http/middleware/session";
import {
  ApprovalSchema,
  errors,
  jsonBody,
  noContent,
  PageQuerySchema,
  pageOf,
  pathParam,
  Timestamp,
} from "../http/responses";
import { createRouter } from "../http/router";
import { approvalView } from "../runtime/gates";
import {
  acceptInvitation,
  declineInvitation,
  findMyMembership,
  listMyAgents,
  listMyInstances,
  listMyPrincipals,
  listMySessions,
} from "../tenancy/me";
import { RoleRefSchema } from "./principals";

const UserProfileSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    email: z.string(),
    emailVerified: z.boolean(),
    image: z.string().nullable(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .openapi("UserProfile");
const PrincipalSummarySchema = z
  .object({
    principalId: z.string(),
    tenantId: z.string(),
    tenantName: z.string(),
    tenantSlug: z.string(),
    kind: z.enum(principalKinds),
    status: z.enum(principalStatuses),
    roles: z.array(RoleRefSchema),
  })
  .openapi("PrincipalSummary");
const AgentSummarySchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    tenantName: z.string(),
    name: z.string(),
    description: z.string().nullable(),
    status: z.enum(agentStatuses),
  })
  .openapi("AgentSummary");
const InstanceSummarySchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    tenantName: z.string(),
    agentId: z.string(),
    agentName: z.string(),
    address: z.string(),
    status: z.enum(instanceStatuses),
    createdAt: Timestamp,
  })
  .openapi("InstanceSummary");
const SessionSummarySchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    tenantName: z.string(),
    agentId: z.string(),
    agentName: z.string(),
    status: z.enum(sessionStatuses),
    createdAt: Timestamp,
    endedAt: Timestamp.nullable(),
  })
  .openapi("SessionSummary");
const InvitationParams = z.object({
  principalId: pathParam("principalId", "prn_0123456789abcdef0123456789abcdef"),
});

const route = (path: string, summary: string, schema: z.ZodType, name: string, description?: string) =>
  createRoute({
    method: "get",
    path,
    tags: ["User"],
    summary,
    ...(description ? { description } : {}),
    middleware: [requireUser()] as const,
    request: { query: PageQuerySchema },
    responses: { 200: jsonBody(pageOf(schema, name), summary), ...errors(400, 401) },
  });

export const meRoutes = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/api/me",
      tags: ["User"],
      summary: "The signed-in user",
      middleware: [requireUser()] as const,
      responses: { 200: jsonBody(UserProfileSchema, "The user's profile"), ...errors(401) },
    }),
    (c) => {
      const user = signedInUser(c);
      return c.json(
        {
          id: user.id,
          name: user.name,
          email: user.email,
          emailVerified: user.emailVerified,
          image: user.image ?? null,
          createdAt: iso(new Date(user.createdAt)),
          updatedAt: iso(new Date(user.updatedAt)),
        },
        200,
      );
    },
  )
  .openapi(
    route(
      "/api/me/principals",
      "The user's memberships in every tenant",
      PrincipalSummarySchema,
      "PrincipalSummaryPage",
      "Every `user` principal of the caller, whatever its status.",
    ),
    async (c) => {
      const user = signedInUser(c);
      const page = await listMyPrincipals(getDb(c.env), user.id, c.req.valid("query"));
      return c.json(page, 200);
    },
  )
  .openapi(
    route(
      "/api/me/invitations",
      "Invitations waiting for the user",
      PrincipalSummarySchema,
      "InvitationPage",
      "Memberships with status `invited`; accept or decline them.",
    ),
    async (c) => {
      const user = signedInUser(c);
      const page = await listMyPrincipals(getDb(c.env), user.id, c.req.valid("query"), true);
      return c.json(page, 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/api/me/invitations/{principalId}/accept",
      tags: ["User"],
      summary: "Accept an invitation",
      description: "The invited principal becomes `active`. Only the invited user can accept.",
      middleware: [requireUser()] as const,
      request: { params: InvitationParams },
      responses: { 200: jsonBody(PrincipalSummarySchema, "The membership, now active"), ...errors(401, 404, 409) },
    }),
    async (c) => {
      const user = signedInUser(c);
      const db = getDb(c.env);
      const { principalId } = c.req.valid("param");
      const accepted = await acceptInvitation(db, user.id, principalId);
      const scope = { tenantId: accepted.tenantId, principalId };
      await audit(c, "principal.accept", { type: "principal", id: principalId }, null, scope);
      return c.json(await findMyMembership(db, user.id, principalId), 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/api/me/invitations/{principalId}/decline",
      tags: ["User"],
      summary: "Decline an invitation",
      middleware: [requireUser()] as const,
      request: { params: InvitationParams },
      responses: { ...noContent, ...errors(401, 404, 409) },
    }),
    async (c) => {
      const user = signedInUser(c);
      const declined = await declineInvitation(getDb(c.env), user.id, c.req.valid("param").principalId);
      const scope = { tenantId: declined.tenantId, principalId: declined.id };
      await audit(c, "principal.decline", { type: "principal", id: declined.id }, null, scope);
      return c.body(null, 204);
    },
  )
  .openapi(
    route(
      "/api/me/agents",
      "Agent definitions in the user's tenants",
      AgentSummarySchema,
      "AgentSummaryPage",
      "Across every tenant where the caller is an active member.",
    ),
    async (c) => {
      const user = signedInUser(c);
      const page = await listMyAgents(getDb(c.env), user.id, c.req.valid("query"));
      return c.json(
        mapPage(page, ({ createdAt: _, ...summary }) => summary),
        200,
      );
    },
  )
  .openapi(
    route(
      "/api/me/instances",
      "Instances not stopped, in the user's tenants",
      InstanceSummarySchema,
      "InstanceSummaryPage",
    ),
    async (c) => {
      const user = signedInUser(c);
      const page = await listMyInstances(getDb(c.env), user.id, c.req.valid("query"));
      return c.json(
        mapPage(page, (i) => ({ ...i, createdAt: iso(i.createdAt) })),
        200,
      );
    },
  )
  .openapi(
    route(
      "/api/me/sessions",
      "Sessions the user started",
      SessionSummarySchema,
      "SessionSummaryPage",
      "Agent sessions where the caller is the invoking principal.",
    ),
    async (c) => {
      const user = signedInUser(c);
      const page = await listMySessions(getDb(c.env), user.id, c.req.valid("query"));
      return c.json(
        mapPage(page, (s) => ({ ...s, createdAt: iso(s.createdAt), endedAt: isoOrNull(s.endedAt) })),
        200,
      );
    },
  )
  .openapi(
    route(
      "/api/me/approvals",
      "Pending approvals the user may decide",
      ApprovalSchema,
      "ApprovalPage",
      "Pending approvals in tenants where the caller is active and holds `approval:*` manage.",
    ),
    async (c) => {
      const user = signedInUser(c);
      const db = getDb(c.env);
      const deciding = await tenantsDecidedBy(db, user.id, c.req.header("cf-connecting-ip") ?? null);
      if (deciding.length === 0) return c.json({ data: [], nextCursor: null }, 200);
      const page = await listApprovals(db, deciding, { status: "pending" }, c.req.valid("query"));
      return c.json({ data: page.data.map((row) => approvalView(row)), nextCursor: page.nextCursor }, 200);
    },
  );
