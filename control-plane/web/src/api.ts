// REST client for /api/v1.
import { authFetch } from "./session";
import type { BoardSettings } from "./board";

export interface DeviceMetrics {
  cpu_percent: number;
  mem_used_bytes: number;
  mem_total_bytes: number;
  disk_used_bytes: number;
  disk_total_bytes: number;
  temperature_c: number | null;
  uptime_s: number;
  agent_version: string;
}

export interface Device {
  id: string;
  tenant_id: string;
  name: string;
  tags: string[];
  group: string | null;
  status: "online" | "offline";
  last_seen: string | null;
  agent_version: string | null;
  platform: string | null;
  ip: string | null;
  metrics: DeviceMetrics | null;
  board: BoardSettings;
}

interface Page<T> {
  items: T[];
  next_after: string | null;
  total: number;
}

/** Most devices the shell loads; larger fleets page through filters (to come). */
export const MAX_DEVICES = 5000;

async function getJson<T>(path: string): Promise<T> {
  const resp = await authFetch(path, { headers: { accept: "application/json" } });
  const body = await resp.json();
  if (!resp.ok) throw new Error(body?.error?.message ?? `HTTP ${resp.status}`);
  return body.data as T;
}

export async function listDevices(): Promise<Device[]> {
  const devices: Device[] = [];
  let after: string | null = null;
  do {
    const query: string = after ? `?limit=500&after=${encodeURIComponent(after)}` : "?limit=500";
    const page: Page<Device> = await getJson<Page<Device>>(`/api/v1/devices${query}`);
    devices.push(...page.items);
    after = page.next_after;
  } while (after && devices.length < MAX_DEVICES);
  return devices;
}

export function getDevice(id: string): Promise<Device> {
  return getJson<Device>(`/api/v1/devices/${encodeURIComponent(id)}`);
}
