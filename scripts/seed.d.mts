export const demo: { name: string; email: string; password: string; tenantName: string; tenantSlug: string };
export function seedDemo(
  baseUrl: string,
  who?: typeof demo,
): Promise<typeof demo & { token: string; tenantId: string; userCreated: boolean }>;
export function seedDemoRuntime(
  baseUrl: string,
  session: { token: string; tenantId: string },
  stateFile: string,
): Promise<{ agentId: string; sidecarId: string; sidecarSecret: string }>;
