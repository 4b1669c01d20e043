/**
 * Every route group is an OpenAPIHono router made here, so that all of them validate the same way and
 * all of them feed the one OpenAPI document.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "./context";
import { errorResponse } from "./error-envelope";

export type ValidationIssue = { location: string; path: string; message: string; code: string };

export function createRouter() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (result.success) return;
      const issues: ValidationIssue[] = result.error.issues.map((issue) => ({
        location: result.target,
        path: issue.path.map(String).join("."),
        message: issue.message,
        code: issue.code,
      }));
      const summary = issues
        .slice(0, 3)
        .map((i) => (i.path ? `${i.path}: ${i.message}` : i.message))
        .join("; ");
      return errorResponse(c, 400, "validation_failed", `Invalid ${result.target}: ${summary}`, { issues });
    },
  });
}

export type Router = ReturnType<typeof createRouter>;
