import { describe, expect, it } from "vitest";
import { parseSkillManifest, validateSkillTree } from "./skills";

const manifest = (fields: string) => `---\n${fields}\n---\n# Body\n`;

describe("skill manifests", () => {
  it("accepts a kebab name equal to its directory and a plain description", () => {
    expect(parseSkillManifest("greet", manifest("name: greet\ndescription: Says hello"))).toEqual({
      name: "greet",
      description: "Says hello",
    });
  });

  it.each([
    ["no frontmatter", "greet", "# just text", "no YAML frontmatter"],
    ["broken YAML", "greet", manifest("name: [greet"), "not valid YAML"],
    ["a list, not a mapping", "greet", manifest("- a\n- b"), "name must be kebab-case"],
    ["name not kebab", "Greet", manifest("name: Greet\ndescription: x"), "kebab-case"],
    ["name too long", "a".repeat(65), manifest(`name: ${"a".repeat(65)}\ndescription: x`), "at most 64"],
    ["name differs from the directory", "greet", manifest("name: hello\ndescription: x"), "must equal the directory"],
    ["reserved name", "claude", manifest("name: claude\ndescription: x"), "reserved"],
    ["empty description", "greet", manifest("name: greet\ndescription: ''"), "1 to 1024"],
    ["description too long", "greet", manifest(`name: greet\ndescription: ${"x".repeat(1025)}`), "1 to 1024"],
    ["a tag in the description", "greet", manifest("name: greet\ndescription: hi <script>"), "must not contain tags"],
  ])("refuses %s", (_case, directory, text, message) => {
    const result = parseSkillManifest(directory, text);
    expect(result).toHaveProperty("error");
    expect((result as { error: string }).error).toContain(message);
  });

  it("validates every top-level directory and ignores top-level files", async () => {
    const files: Record<string, string> = {
      greet: manifest("name: greet\ndescription: Greets"),
      farewell: manifest("name: farewell\ndescription: Says goodbye"),
    };
    const read = async (dir: string) => files[dir] ?? null;
    await expect(
      validateSkillTree(
        [
          { name: ".gitignore", isDirectory: false },
          { name: "greet", isDirectory: true },
          { name: "farewell", isDirectory: true },
        ],
        read,
      ),
    ).resolves.toEqual({
      skills: [
        { name: "greet", description: "Greets" },
        { name: "farewell", description: "Says goodbye" },
      ],
    });
    await expect(validateSkillTree([{ name: "empty", isDirectory: true }], read)).resolves.toEqual({
      error: "empty/ has no SKILL.md",
    });
  });
});
