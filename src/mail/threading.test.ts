import { describe, expect, it } from "vitest";
import { threadHeaders } from "./threading";

const connectorState = { threadRoot: "<root@peer.example>", lastMessageId: "<last@peer.example>" };

describe("threadHeaders", () => {
  it("sets nothing without history or connector state", () => {
    expect(threadHeaders({ priorInboundMessageIds: [], connectorState: null })).toEqual({});
  });

  it("replies to the connector's last message, referencing its thread root", () => {
    expect(threadHeaders({ priorInboundMessageIds: [], connectorState })).toEqual({
      inReplyTo: "<last@peer.example>",
      references: ["<root@peer.example>"],
    });
  });

  it("prefers the session's own history: replies to the newest, references all oldest first", () => {
    expect(threadHeaders({ priorInboundMessageIds: ["<prior-1@d>"], connectorState })).toEqual({
      inReplyTo: "<prior-1@d>",
      references: ["<prior-1@d>"],
    });
    const ids = ["<a@d>", "<b@d>", "<c@d>"];
    const headers = threadHeaders({ priorInboundMessageIds: ids, connectorState: null });
    expect(headers).toEqual({ inReplyTo: "<c@d>", references: ["<a@d>", "<b@d>", "<c@d>"] });
    expect(headers.references).not.toBe(ids);
  });
});
