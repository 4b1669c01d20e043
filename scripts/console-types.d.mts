export const consoleTypesPath: string;
export function consoleTypesOf(document: unknown): Promise<string>;
