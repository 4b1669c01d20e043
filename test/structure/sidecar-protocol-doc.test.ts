/**
 * docs/sidecar-protocol.md, section 8, is a complete session as literal JSON lines. Each line is checked
 * against the frame schemas the hub enforces (src/runtime/frame-schemas.ts), so the document cannot drift
 * from the code: a hub line must match the hub → sidecar shapes, a sidecar line the sidecar → hub ones,
 * and in a block marked `refused` each sidecar line must be refused with exactly the `frame.error` after it.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import {
  ControlHubFrameSchema,
  InstanceHubFrameSchema,
  readControlFrame,
  readInstanceFrame,
} from "../../src/runtime/frame-schemas";

const doc = readFileSync(resolve(__dirname, "../../docs/sidecar-protocol.md"), "utf8");

type Line = { from: "hub" | "sidecar"; json: string; line: number };
type Block = { channel: "control" | "instance"; refused: boolean; lines: Line[] };

/** The fenced blocks that follow `<!-- example-session: control|instance[, refused] -->`. */
function exampleBlocks(text: string): Block[] {
  const blocks: Block[] = [];
  const marker = /<!-- example-session: (control|instance)(, refused)? -->\n```text\n([\s\S]*?)\n```/g;
  for (const match of text.matchAll(marker)) {
    const first = text.slice(0, match.index).split("\n").length + 2;
    const lines: Line[] = [];
    (match[3] ?? "").split("\n").forEach((raw, i) => {
      if (raw.trim() === "" || raw.startsWith("#")) return;
      const parsed = /^(hub|sidecar) +(\{.*\})$/.exec(raw);
      if (!parsed) throw new Error(`line ${first + i} is not "hub|sidecar <JSON>": ${raw}`);
      lines.push({ from: parsed[1] as Line["from"], json: parsed[2] as string, line: first + i });
    });
    blocks.push({ channel: match[1] as Block["channel"], refused: match[2] !== undefined, lines });
  }
  return blocks;
}

const blocks = exampleBlocks(doc);
const session = blocks.filter((b) => !b.refused);

describe("the example session in docs/sidecar-protocol.md", () => {
  it("is there: a control channel and an instance channel block, and a refused frame", () => {
    expect(blocks.map((b) => [b.channel, b.refused])).toEqual([
      ["control", false],
      ["instance", false],
      ["instance", true],
    ]);
  });

  it("every line is a frame of the documented shape", () => {
    for (const { channel, lines } of session) {
      for (const { from, json, line } of lines) {
        if (from === "sidecar") {
          const read = channel === "control" ? readControlFrame(json) : readInstanceFrame(json);
          expect({ line, refused: read.ok ? null : read.error }).toEqual({ line, refused: null });
        } else {
          const schema = channel === "control" ? ControlHubFrameSchema : InstanceHubFrameSchema;
          const checked = schema.safeParse(JSON.parse(json));
          expect({ line, issues: checked.error?.issues ?? null }).toEqual({ line, issues: null });
        }
      }
    }
  });

  it("goes from connect to stop in the protocol's order, and a turn ends with connector.reply", () => {
    const [control, instance] = session.map((b) => b.lines.map((l) => `${l.from} ${JSON.parse(l.json).type}`));
    expect(control?.slice(0, 3)).toEqual(["hub hello", "sidecar ready", "hub instance.assign"]);
    const events = (instance ?? []).map((entry, i) => {
      const frame = JSON.parse(session[1]?.lines[i]?.json ?? "{}");
      return frame.type === "agent.event" ? `event ${frame.event.type}` : entry;
    });
    const order = [
      "hub agent.deploy",
      "sidecar agent.deploy.ack",
      "hub repo.pack.done",
      "hub session.start",
      "sidecar session.start.ack",
      "hub mail.inbound",
      "event inference.start",
      "event inference.done",
      "event connector.reply",
      "sidecar mail.outbound",
      "hub agent.undeploy",
      "sidecar agent.undeploy.ack",
    ];
    const positions = order.map((step) => events.indexOf(step));
    expect(positions.every((p) => p >= 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(events.at(-1)).toBe("sidecar agent.undeploy.ack");
  });

  it("a refused frame is answered with exactly the frame.error the document shows", () => {
    for (const { lines } of blocks.filter((b) => b.refused)) {
      expect(lines.map((l) => l.from)).toEqual(["sidecar", "hub"]);
      const [sent, answer] = lines as [Line, Line];
      const read = readInstanceFrame(sent.json);
      expect(read.ok ? null : read.error).toEqual(JSON.parse(answer.json));
    }
  });
});
