import { defineConfig } from "drizzle-kit";

// drizzle-kit is the one migration generator: `npm run db:generate -- --name <what_changed>`.
// `wrangler d1 migrations apply` and the test setup apply the generated SQL.
export default defineConfig({
  dialect: "sqlite",
  schema: "./src/db/schema.ts",
  out: "./migrations",
});
