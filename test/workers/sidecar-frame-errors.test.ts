/**
 * Frames that do not match the protocol (docs/sidecar-protocol.md, "Refused frames") are answered with one
 * `frame.error` naming the first bad field, are not applied, and leave the channel open — on the instance
 * channel and on the control channel. Every frame the hub sends here matches the hub → sidecar schemas.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ControlHubFrameSchema, InstanceHubFrameSchema } from "../../src/runtime/frame-schemas";
import { api } from "./support/api";
import { instancesOf, launch, mailRows, type Runtime, SLOW, setUpRuntime, subscribe } from "./support/runtime";
import { type Frame, FrameLog, TestSidecar, upgrade } from "./support/test-sidecar";

const UNKNOWN_TYPE = expect.stringMatching(
  /^unknown frame type "no\.such\.frame"; expected one of agent\.deploy\.ack, /,
);

describe("frames of the wrong shape", SLOW, () => {
  let r: Runtime;
  let sidecar: TestSidecar;

  beforeAll(async () => {
    r = await setUpRuntime();
    sidecar = await TestSidecar.connect(r.secret);
  }, 30_000);

  afterAll(() => sidecar?.close());

  it("on the instance channel: each is refused with the exact frame.error, nothing is recorded, the channel stays open", async () => {
    const { instance, channel } = await launch(r, sidecar);
    const path = `${instancesOf(r.t.id)}/${instance.id}`;
    const { agentAddress, sessionId } = channel;
    const event = (type: string, data: unknown, seq = 1) => ({
      type: "agent.event",
      agentAddress,
      sessionId,
      event: { type, seq, data },
    });
    const refused = async (frame: unknown) => {
      const from = channel.log.frames.length;
      if (typeof frame === "string") channel.ws?.send(frame);
      else channel.send(frame as Frame);
      const error = await channel.log.next("frame.error", from);
      // Exactly one answer, and it is the refusal.
      await channel.settled();
      expect(channel.log.frames.slice(from).filter((f) => f.type !== "pong")).toEqual([error]);
      return error;
    };

    const cases: [string, unknown, Record<string, unknown>][] = [
      ["not JSON", "{not json", { frameType: null, field: null, message: expect.stringMatching(/^not JSON: /) }],
      [
        "not an object",
        "[1,2]",
        { frameType: null, field: null, message: "a frame is a JSON object with a string `type`" },
      ],
      [
        "unknown type",
        { type: "no.such.frame", agentAddress },
        { frameType: "no.such.frame", field: "type", message: UNKNOWN_TYPE },
      ],
      [
        "no type",
        { agentAddress },
        {
          frameType: null,
          field: "type",
          message: expect.stringMatching(/^missing: expected one of agent\.deploy\.ack, /),
        },
      ],
      [
        "a field missing",
        { type: "agent.event", agentAddress, event: { type: "inference.start", seq: 1, data: { model: "echo" } } },
        { frameType: "agent.event", field: "sessionId", message: "missing (expected string)" },
      ],
      [
        "a field of the wrong type",
        event("inference.start", { model: 42 }),
        {
          frameType: "agent.event",
          field: "event.data.model",
          message: "Invalid input: expected string, received number",
        },
      ],
      [
        "a misspelled usage field",
        event("inference.usage", { usage: { input_tokens: 10, output_tokens: 3 } }),
        { frameType: "agent.event", field: "event.data.usage.input_tokens", message: 'unknown field "input_tokens"' },
      ],
      [
        "a token count that is not a whole number",
        event("inference.usage", { usage: { input: 1.5, output: 3 } }),
        {
          frameType: "agent.event",
          field: "event.data.usage.input",
          message: "Invalid input: expected int, received number",
        },
      ],
      [
        "a content block with a misspelled field",
        event("inference.done", { turn: { role: "assistant", model: "echo", content: [{ type: "text", txt: "hi" }] } }),
        { frameType: "agent.event", field: "event.data.turn.content.0.txt", message: 'unknown field "txt"' },
      ],
      [
        "an error that is not an object",
        event("inference.error", { error: "boom" }),
        {
          frameType: "agent.event",
          field: "event.data.error",
          message: "Invalid input: expected object, received string",
        },
      ],
      [
        "an unknown event type",
        event("inference.finished", {}),
        {
          frameType: "agent.event",
          field: "event.type",
          message: expect.stringMatching(/^unknown event type "inference\.finished"; expected custom\.\* or one of: /),
        },
      ],
      [
        "a negative event seq",
        event("custom.note", {}, -1),
        { frameType: "agent.event", field: "event.seq", message: "Too small: expected number to be >=0" },
      ],
      [
        "mail that is not base64",
        { type: "mail.outbound", agentAddress, rawMessage: "%%%", recipients: ["x@example.com"] },
        { frameType: "mail.outbound", field: "rawMessage", message: "Invalid base64-encoded string" },
      ],
      [
        "a field the protocol does not have",
        { type: "ping", id: 1 },
        { frameType: "ping", field: "id", message: 'unknown field "id"' },
      ],
    ];
    for (const [what, frame, expected] of cases) {
      expect({ what, error: await refused(frame) }).toEqual({ what, error: { type: "frame.error", ...expected } });
    }

    // Nothing of them was applied: no turn, no mail, no event in the instance's log.
    expect((await api(`${path}/turns`, { token: r.token })).body.data).toEqual([]);
    expect(await mailRows(instance.id)).toEqual([]);
    channel.event("custom.marker", {});
    const stream = await subscribe(path, r.token, "?cursor=0");
    const logged = await stream.until('"custom.marker"');
    await stream.close();
    expect(logged).not.toMatch(/"type":"(inference|custom\.note)/);

    // The channel is still open and valid frames are applied.
    channel.event("inference.start", { model: "echo" });
    channel.event("inference.usage", { usage: { input: 10, output: 3 } });
    channel.event("connector.reply", { content: "fine" });
    await channel.settled();
    const turns = (await api(`${path}/turns`, { token: r.token })).body.data;
    expect(turns).toEqual([expect.objectContaining({ status: "completed", inputTokens: 10, outputTokens: 3 })]);

    // Everything the hub sent on this channel has the documented shape.
    for (const frame of channel.log.frames) {
      expect({ frame: frame.type, issues: InstanceHubFrameSchema.safeParse(frame).error?.issues }).toEqual({
        frame: frame.type,
        issues: undefined,
      });
    }
  });

  it("on the control channel: refused with frame.error, the channel stays open", async () => {
    const own = await setUpRuntime();
    const opened = await upgrade("/api/sidecars/connect", own.secret);
    const ws = opened.ws as WebSocket;
    const log = new FrameLog();
    ws.addEventListener("message", (e) => log.push(JSON.parse(e.data as string)));
    try {
      await log.next("hello");
      const refused = async (frame: string) => {
        const from = log.frames.length;
        ws.send(frame);
        return log.next("frame.error", from);
      };
      expect(await refused("nope")).toEqual({
        type: "frame.error",
        frameType: null,
        field: null,
        message: expect.stringMatching(/^not JSON: /),
      });
      expect(await refused(JSON.stringify({ type: "ready" }))).toEqual({
        type: "frame.error",
        frameType: "ready",
        field: "instances",
        message: "missing (expected array)",
      });
      expect(await refused(JSON.stringify({ type: "ready", instances: ["ins_1", 2] }))).toEqual({
        type: "frame.error",
        frameType: "ready",
        field: "instances.1",
        message: "Invalid input: expected string, received number",
      });
      expect(await refused(JSON.stringify({ type: "hello", sidecarId: "sdc_x", tenantId: "tnt_x" }))).toEqual({
        type: "frame.error",
        frameType: "hello",
        field: "type",
        message: 'unknown frame type "hello"; expected one of ready, ping',
      });
      const from = log.frames.length;
      ws.send(JSON.stringify({ type: "ping" }));
      await log.next("pong", from);
      for (const frame of log.frames) expect(ControlHubFrameSchema.safeParse(frame).success, frame.type).toBe(true);
    } finally {
      ws.close(1000, "done");
    }
  });
});
