/**
 * Threading headers for a user message to an instance: the session's own history wins; without history,
 * the thread the agent's connector reported; otherwise none.
 */

export interface ConnectorThreadState {
  threadRoot: string;
  lastMessageId: string;
}

export interface ThreadHeaders {
  inReplyTo?: string;
  references?: string[];
}

export function threadHeaders(input: {
  /** Message ids (`<id@domain>`) of the instance's prior delivered inbound mail, oldest first. */
  priorInboundMessageIds: string[];
  connectorState: ConnectorThreadState | null;
}): ThreadHeaders {
  const prior = input.priorInboundMessageIds;
  const last = prior[prior.length - 1];
  if (last !== undefined) return { inReplyTo: last, references: [...prior] };
  if (input.connectorState) {
    return { inReplyTo: input.connectorState.lastMessageId, references: [input.connectorState.threadRoot] };
  }
  return {};
}
