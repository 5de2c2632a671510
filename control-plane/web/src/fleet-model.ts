// What the screens page computes, kept apart from the DOM so it is tested on its own: which
// screens a filter shows, the choices its selects offer, a screen's tags after an edit, and a
// metric series as chart columns.

export interface FleetDevice {
  id: string;
  name: string;
  tags: string[];
  group: string | null;
  status: "online" | "offline";
  agent_version: string | null;
}

export interface FleetFilter {
  /** Part of a name or id, any case. */
  text: string;
  /** "" = any. */
  status: "" | "online" | "offline";
  tag: string;
  group: string;
  version: string;
}

export const NO_FILTER: FleetFilter = { text: "", status: "", tag: "", group: "", version: "" };

/** A saved fleet query as the server keeps it (`/api/v1/queries`): absent fields match all. */
export type FleetQuery = Partial<Record<keyof FleetFilter, string>>;

export interface SavedQuery {
  id: string;
  name: string;
  query: FleetQuery;
}

/** The query a filter saves: only the fields set, the text trimmed. */
export function queryOf(f: FleetFilter): FleetQuery {
  const out: FleetQuery = {};
  for (const key of Object.keys(NO_FILTER) as (keyof FleetFilter)[]) {
    const value = f[key].trim();
    if (value) out[key] = value;
  }
  return out;
}

/** The filter a saved query sets. */
export function filterOf(q: FleetQuery): FleetFilter {
  return { ...NO_FILTER, ...q } as FleetFilter;
}

/** Most tags a screen may carry (the server's limit). */
export const MAX_TAGS = 20;

export function matches(d: FleetDevice, f: FleetFilter): boolean {
  const text = f.text.trim().toLocaleLowerCase();
  if (text && !d.name.toLocaleLowerCase().includes(text) && !d.id.includes(text)) return false;
  if (f.status && d.status !== f.status) return false;
  if (f.tag && !d.tags.includes(f.tag)) return false;
  if (f.group && d.group !== f.group) return false;
  if (f.version && d.agent_version !== f.version) return false;
  return true;
}

export function filterDevices<D extends FleetDevice>(devices: D[], f: FleetFilter): D[] {
  return devices.filter((d) => matches(d, f));
}

/** The tags, groups and agent versions present, each sorted, for the filter's selects. */
export function facets(devices: FleetDevice[]): { tags: string[]; groups: string[]; versions: string[] } {
  const tags = new Set<string>();
  const groups = new Set<string>();
  const versions = new Set<string>();
  for (const d of devices) {
    for (const t of d.tags) tags.add(t);
    if (d.group) groups.add(d.group);
    if (d.agent_version) versions.add(d.agent_version);
  }
  const sorted = (s: Set<string>) => [...s].sort((a, b) => a.localeCompare(b));
  return { tags: sorted(tags), groups: sorted(groups), versions: sorted(versions) };
}

/** A screen's tags with `tag` added or removed; null when nothing changes. */
export function editTags(tags: string[], tag: string, add: boolean): string[] | null {
  const clean = tag.trim().toLocaleLowerCase();
  if (!clean) return null;
  if (add) return tags.includes(clean) ? null : [...tags, clean];
  return tags.includes(clean) ? tags.filter((t) => t !== clean) : null;
}

/** Whether every shown screen is selected (the header checkbox). */
export function allSelected(shown: FleetDevice[], selected: Set<string>): boolean {
  return shown.length > 0 && shown.every((d) => selected.has(d.id));
}

export interface SeriesPoint {
  t: string;
  avg: number;
  min: number;
  max: number;
  count: number;
}

/** A series as chart columns: seconds since the epoch, then average, minimum and maximum,
 * each scaled by `scale` (bytes to MiB, say). Gaps longer than three steps break the line. */
export function columns(points: SeriesPoint[], stepS: number, scale = 1): [number[], (number | null)[], (number | null)[], (number | null)[]] {
  const xs: number[] = [];
  const avg: (number | null)[] = [];
  const min: (number | null)[] = [];
  const max: (number | null)[] = [];
  let last: number | null = null;
  for (const p of points) {
    const x = Date.parse(p.t) / 1000;
    if (last !== null && x - last > 3 * stepS) {
      xs.push(last + stepS);
      avg.push(null);
      min.push(null);
      max.push(null);
    }
    xs.push(x);
    avg.push(p.avg * scale);
    min.push(p.min * scale);
    max.push(p.max * scale);
    last = x;
  }
  return [xs, avg, min, max];
}
