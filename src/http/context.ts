/** The Hono environment every router shares: bindings plus what middleware puts in the context. */
export type AppVariables = {
  requestId: string;
};

export type AppEnv = {
  Bindings: Env;
  Variables: AppVariables;
};
