export const assetsDir: string;
export function buildAssets(opts?: { quiet?: boolean }): Promise<void>;
