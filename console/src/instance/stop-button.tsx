/**
 * Stopping an instance ends its session for good, so the button asks once more, in the page (no native
 * confirm()), and keeps the keyboard where the first click was. One control for the list and the page.
 */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api } from "../api";
import { FormError } from "../ui";
import { instancePath } from "./keys";

export function StopButton({
  tenantId,
  instanceId,
  question = "Stop this instance? Its session ends and it takes no more mail.",
}: {
  tenantId: string;
  instanceId: string;
  question?: string;
}) {
  const client = useQueryClient();
  const [confirming, setConfirming] = useState(false);
  const stop = useMutation({
    mutationFn: () => api<null>("DELETE", instancePath(tenantId, instanceId)),
    onSuccess: () => setConfirming(false),
    // Every list and panel of the tenant that shows the instance.
    onSettled: () => client.invalidateQueries({ queryKey: ["tenant", tenantId] }),
  });
  if (!confirming)
    return (
      <button type="button" className="secondary" onClick={() => setConfirming(true)}>
        Stop
      </button>
    );
  return (
    // biome-ignore lint/a11y/useSemanticElements: a pair of buttons, not a set of form controls
    <div className="stop-confirm" role="group" aria-label={question}>
      <span>{question}</span>
      <button
        type="button"
        className="contrast"
        aria-busy={stop.isPending}
        disabled={stop.isPending}
        onClick={() => stop.mutate()}
        ref={(el) => el?.focus()}
      >
        Yes, stop it
      </button>
      <button
        type="button"
        className="secondary outline"
        disabled={stop.isPending}
        onClick={() => setConfirming(false)}
      >
        Cancel
      </button>
      <FormError error={stop.error} />
    </div>
  );
}
