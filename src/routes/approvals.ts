import { createRoute, z } from "@hono/zod-openapi";
import { decideApproval, findApproval, listApprovals } from "../authz/approvals";
import { getDb } from "../db/client";
import { approvalScopes, approvalStatuses } from "../db/schema";
import { idResource, requireGrant } from "../http/middleware/require-grant";
import {
  ApprovalSchema,
  errors,
  jsonBody,
  jsonRequest,
  PageQuerySchema,
  pageOf,
  pathParam,
  TenantParams,
} from "../http/responses";
import { createRouter } from "../http/router";
import { announceApproval } from "../runtime/approval-updates";
import { approvalView } from "../runtime/gates";
import { pushGrantUpdates } from "../runtime/grant-updates";

const ApprovalParams = TenantParams.extend({
  approvalId: pathParam("approvalId", "apr_0123456789abcdef0123456789abcdef"),
});
const approvalResource = idResource("approval", "approvalId");
const ListQuery = PageQuerySchema.extend({
  status: z.enum(approvalStatuses).optional(),
  instanceId: z.string().min(1).max(128).optional(),
  agentId: z.string().min(1).max(128).optional(),
});
const ApproveSchema = z
  .object({
    scope: z.enum(approvalScopes).openapi({
      description: "`once`: this request goes ahead; `always`: an allow grant is made, so the agent is not asked again",
    }),
  })
  .openapi("ApproveApproval");
const RejectSchema = z.object({ message: z.string().trim().min(1).max(2000).optional() }).openapi("RejectApproval");
const base = "/api/tenants/{tenantId}/approvals";

export const approvalRoutes = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: base,
      tags: ["Approvals"],
      summary: "List approvals",
      description:
        "Needs `approval:*` read. Newest first; `status` filters (a pending approval past its time is `expired`).",
      middleware: [requireGrant("approval:*", "read")] as const,
      request: { params: TenantParams, query: ListQuery },
      responses: {
        200: jsonBody(pageOf(ApprovalSchema, "ApprovalList"), "A page of approvals"),
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const { limit, cursor, ...filter } = c.req.valid("query");
      const page = await listApprovals(getDb(c.env), [c.get("tenant").id], filter, { limit, cursor });
      return c.json({ data: page.data.map((row) => approvalView(row)), nextCursor: page.nextCursor }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: `${base}/{approvalId}`,
      tags: ["Approvals"],
      summary: "Get an approval",
      middleware: [requireGrant(approvalResource, "read")] as const,
      request: { params: ApprovalParams },
      responses: { 200: jsonBody(ApprovalSchema, "The approval"), ...errors(401, 403, 404) },
    }),
    async (c) => {
      const row = await findApproval(getDb(c.env), c.get("tenant").id, c.req.valid("param").approvalId);
      return c.json(approvalView(row), 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: `${base}/{approvalId}/approve`,
      tags: ["Approvals"],
      summary: "Approve: once, or always (an allow grant for the agent)",
      description:
        "Needs `approval:<id>` manage. The agent is told at once (or when its sidecar is back). A decision is final: " +
        "409 `approval_decided` for a second one, 409 `approval_expired` after its time.",
      middleware: [requireGrant(approvalResource, "manage")] as const,
      request: { params: ApprovalParams, ...jsonRequest(ApproveSchema) },
      responses: { 200: jsonBody(ApprovalSchema, "The approval, approved"), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) => {
      const db = getDb(c.env);
      const tenantId = c.get("tenant").id;
      const decided = await decideApproval(db, tenantId, c.req.valid("param").approvalId, {
        status: "approved",
        scope: c.req.valid("json").scope,
        decidedBy: c.get("principal").id,
      });
      if (decided.grantsChanged)
        await pushGrantUpdates(c.env, db, tenantId, { principalId: decided.approval.principalId });
      await announceApproval(c.env, decided.approval);
      return c.json(approvalView(decided.approval), 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: `${base}/{approvalId}/reject`,
      tags: ["Approvals"],
      summary: "Reject, with a message the agent is given",
      description: "Needs `approval:<id>` manage. Final, like approving: 409 for a second decision or after its time.",
      middleware: [requireGrant(approvalResource, "manage")] as const,
      request: { params: ApprovalParams, ...jsonRequest(RejectSchema) },
      responses: { 200: jsonBody(ApprovalSchema, "The approval, rejected"), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) => {
      const decided = await decideApproval(getDb(c.env), c.get("tenant").id, c.req.valid("param").approvalId, {
        status: "rejected",
        message: c.req.valid("json").message ?? null,
        decidedBy: c.get("principal").id,
      });
      await announceApproval(c.env, decided.approval);
      return c.json(approvalView(decided.approval), 200);
    },
  );
