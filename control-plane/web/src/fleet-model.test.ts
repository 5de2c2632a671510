import { describe, expect, it } from "vitest";
import { allSelected, columns, editTags, facets, filterDevices, filterOf, NO_FILTER, queryOf, type FleetDevice } from "./fleet-model";

const fleet: FleetDevice[] = [
  { id: "hall01", name: "Main hall", tags: ["hall", "lobby"], group: "north", status: "online", agent_version: "0.2.0" },
  { id: "beit02", name: "בית מדרש", tags: ["study"], group: null, status: "offline", agent_version: "0.1.0" },
  { id: "hall03", name: "Women's gallery", tags: [], group: "north", status: "online", agent_version: null },
];

describe("the screens filter", () => {
  it("matches names in any script and case, and ids", () => {
    expect(filterDevices(fleet, { ...NO_FILTER, text: "MAIN" }).map((d) => d.id)).toEqual(["hall01"]);
    expect(filterDevices(fleet, { ...NO_FILTER, text: "מדרש" }).map((d) => d.id)).toEqual(["beit02"]);
    expect(filterDevices(fleet, { ...NO_FILTER, text: "hall" }).map((d) => d.id)).toEqual(["hall01", "hall03"]);
  });

  it("combines status, tag, group and version", () => {
    expect(filterDevices(fleet, { ...NO_FILTER, status: "online", group: "north" })).toHaveLength(2);
    expect(filterDevices(fleet, { ...NO_FILTER, status: "online", tag: "lobby" }).map((d) => d.id)).toEqual(["hall01"]);
    expect(filterDevices(fleet, { ...NO_FILTER, version: "0.1.0" }).map((d) => d.id)).toEqual(["beit02"]);
    expect(filterDevices(fleet, { ...NO_FILTER, status: "offline", group: "north" })).toEqual([]);
  });

  it("offers the tags, groups and versions present", () => {
    expect(facets(fleet)).toEqual({ tags: ["hall", "lobby", "study"], groups: ["north"], versions: ["0.1.0", "0.2.0"] });
  });

  it("knows when every shown screen is selected", () => {
    expect(allSelected(fleet.slice(0, 2), new Set(["hall01", "beit02", "x"]))).toBe(true);
    expect(allSelected(fleet, new Set(["hall01"]))).toBe(false);
    expect(allSelected([], new Set())).toBe(false);
  });
});

describe("tag edits", () => {
  it("adds once, removes what is there, and says when nothing changes", () => {
    expect(editTags(["a"], " B ", true)).toEqual(["a", "b"]);
    expect(editTags(["a", "b"], "b", true)).toBeNull();
    expect(editTags(["a", "b"], "a", false)).toEqual(["b"]);
    expect(editTags(["a"], "z", false)).toBeNull();
    expect(editTags(["a"], "  ", true)).toBeNull();
  });
});

describe("chart columns", () => {
  it("scale values and break the line over gaps", () => {
    const points = [
      { t: "2026-12-01T00:00:00Z", avg: 2, min: 1, max: 3, count: 2 },
      { t: "2026-12-01T00:05:00Z", avg: 4, min: 4, max: 4, count: 1 },
      { t: "2026-12-01T01:00:00Z", avg: 6, min: 5, max: 7, count: 3 },
    ];
    const [xs, avg, min, max] = columns(points, 300, 0.5);
    const t0 = Date.parse("2026-12-01T00:00:00Z") / 1000;
    expect(xs).toEqual([t0, t0 + 300, t0 + 600, t0 + 3600]);
    expect(avg).toEqual([1, 2, null, 3]);
    expect(min).toEqual([0.5, 2, null, 2.5]);
    expect(max).toEqual([1.5, 2, null, 3.5]);
  });
});

describe("saved queries", () => {
  it("save only the filters set and give them back", () => {
    const f = { ...NO_FILTER, text: "  lobby ", status: "online" as const, tag: "hall" };
    expect(queryOf(f)).toEqual({ text: "lobby", status: "online", tag: "hall" });
    expect(filterOf(queryOf(f))).toEqual({ ...f, text: "lobby" });
    expect(queryOf(NO_FILTER)).toEqual({});
  });
});
