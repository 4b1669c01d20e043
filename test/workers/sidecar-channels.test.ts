import { describe, expect, it } from "vitest";
import { api, expectError, unique } from "./support/api";
import { instancesOf, launch, ok, SLOW, setUpRuntime, tenantBase, until } from "./support/runtime";
import { TestSidecar, upgrade } from "./support/test-sidecar";

describe("sidecar channels", SLOW, () => {
  it("refuse an upgrade without a valid secret: 401, no socket", async () => {
    const r = await setUpRuntime();
    for (const path of [
      "/api/sidecars/connect",
      "/api/sidecars/instances/ins_0123456789abcdef0123456789abcdef/connect",
    ]) {
      for (const secret of [undefined, "", "ahs_wrong", r.secret.slice(0, -1), `x${r.secret}`]) {
        const res = await upgrade(path, secret);
        expect({ path, secret, status: res.status, socket: res.ws !== null }).toEqual({
          path,
          secret,
          status: 401,
          socket: false,
        });
        expect(res.body.error.code).toBe("unauthorized");
      }
    }
    const plain = await api("/api/sidecars/connect", { headers: { authorization: `Bearer ${r.secret}` } });
    expectError(plain, 426, "upgrade_required");
    const row = await api(`${tenantBase(r.t.id)}/sidecars/${r.sidecarId}`, { token: r.token });
    expect(row.body.status).toBe("offline");
  });

  it("instance channel: another sidecar 403, another tenant's or an unknown instance 404, a stopped one 410", async () => {
    const r = await setUpRuntime();
    const sidecar = await TestSidecar.connect(r.secret);
    try {
      const { instance } = await launch(r, sidecar);
      const path = `/api/sidecars/instances/${instance.id}/connect`;
      const second = await ok(`${tenantBase(r.t.id)}/sidecars`, r.token, { name: unique("host-") });
      const foreign = await upgrade(path, second.secret);
      expect({ status: foreign.status, socket: foreign.ws !== null, code: foreign.body.error.code }).toEqual({
        status: 403,
        socket: false,
        code: "forbidden",
      });
      const other = await setUpRuntime();
      const elsewhere = await upgrade(path, other.secret);
      expect({ status: elsewhere.status, code: elsewhere.body.error.code }).toEqual({ status: 404, code: "not_found" });
      const unknown = await upgrade("/api/sidecars/instances/ins_0123456789abcdef0123456789abcdef/connect", r.secret);
      expect({ status: unknown.status, code: unknown.body.error.code }).toEqual({ status: 404, code: "not_found" });

      // The instance's own channel was untouched by those attempts.
      expect((await api(`${instancesOf(r.t.id)}/${instance.id}/health`, { token: r.token })).body.liveness).toBe("ok");

      expect((await api(`${instancesOf(r.t.id)}/${instance.id}`, { method: "DELETE", token: r.token })).status).toBe(
        204,
      );
      const gone = await upgrade(path, r.secret);
      expect({ status: gone.status, socket: gone.ws !== null, code: gone.body.error.code }).toEqual({
        status: 410,
        socket: false,
        code: "gone",
      });
    } finally {
      sidecar.close();
    }
  });

  it("the control channel: hello names the sidecar, ready brings assignments of live instances back", async () => {
    const r = await setUpRuntime();
    const first = await TestSidecar.connect(r.secret);
    const { instance } = await launch(r, first);
    expect(first.control.frames[0]).toEqual({ type: "hello", sidecarId: r.sidecarId, tenantId: r.t.id });
    first.close();
    await until("the sidecar to be offline", async () => {
      const row = await api(`${tenantBase(r.t.id)}/sidecars/${r.sidecarId}`, { token: r.token });
      return row.body.status === "offline";
    });
    // A restarted sidecar lists what it still runs; the hub assigns live instances and revokes unknown ones.
    const restarted = await TestSidecar.connect(r.secret, {}, ["ins_ffffffffffffffffffffffffffffffff"]);
    try {
      const assign = await restarted.control.next("instance.assign");
      expect(assign).toEqual({
        type: "instance.assign",
        instanceId: instance.id,
        agentAddress: instance.address,
        path: `/api/sidecars/instances/${instance.id}/connect`,
      });
      expect(await restarted.control.next("instance.revoke")).toMatchObject({
        instanceId: "ins_ffffffffffffffffffffffffffffffff",
      });
      const row = await api(`${tenantBase(r.t.id)}/sidecars/${r.sidecarId}`, { token: r.token });
      expect(row.body.status).toBe("online");
    } finally {
      restarted.close();
    }
  });
});
