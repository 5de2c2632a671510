// The signed-in session: an access token kept in memory only, renewed through the refresh
// cookie (HttpOnly, so scripts never see it). Every API call goes through `authFetch`.

export interface SessionUser {
  id: string;
  email: string;
  name: string;
  role: string;
  tenant_id: string | null;
}

interface TokenResponse {
  access_token: string;
  expires_in: number;
  user: SessionUser;
}

let accessToken: string | null = null;
let user: SessionUser | null = null;
let refreshTimer: ReturnType<typeof setTimeout> | undefined;
let onSignedOut: () => void = () => {};

/** Called when the session ends and cannot be renewed (show the login form). */
export function whenSignedOut(callback: () => void): void {
  onSignedOut = callback;
}

export function currentUser(): SessionUser | null {
  return user;
}

export function token(): string | null {
  return accessToken;
}

function accept(body: TokenResponse): void {
  accessToken = body.access_token;
  user = body.user;
  clearTimeout(refreshTimer);
  // Renew a minute before expiry so live connections never hold a stale token for long.
  refreshTimer = setTimeout(() => void refresh(), Math.max(30, body.expires_in - 60) * 1000);
}

function end(): void {
  accessToken = null;
  user = null;
  clearTimeout(refreshTimer);
}

/** The outcome of a login attempt, as an i18n-able reason. */
export type LoginResult = "ok" | "invalid" | "totp_required" | "locked" | "error";

export async function login(email: string, password: string, totp?: string): Promise<LoginResult> {
  const resp = await fetch("/api/v1/auth/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    credentials: "same-origin",
    body: JSON.stringify(totp ? { email, password, totp } : { email, password }),
  });
  const body = await resp.json().catch(() => null);
  if (resp.ok) {
    accept(body.data as TokenResponse);
    return "ok";
  }
  const code = body?.error?.code;
  if (code === "totp_required") return "totp_required";
  if (code === "invalid_credentials") return "invalid";
  if (code === "too_many_requests") return "locked";
  return "error";
}

/** Renews the access token with the refresh cookie; false when there is no session. */
export async function refresh(): Promise<boolean> {
  const resp = await fetch("/api/v1/auth/refresh", { method: "POST", credentials: "same-origin" });
  if (!resp.ok) {
    end();
    return false;
  }
  accept((await resp.json()).data as TokenResponse);
  return true;
}

export async function logout(): Promise<void> {
  const headers: Record<string, string> = accessToken ? { authorization: `Bearer ${accessToken}` } : {};
  await fetch("/api/v1/auth/logout", { method: "POST", credentials: "same-origin", headers }).catch(() => undefined);
  end();
  onSignedOut();
}

/** `fetch` with the access token; one renewal and retry on 401, then sign-out. */
export async function authFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const send = () => {
    const headers = new Headers(init.headers);
    if (accessToken) headers.set("authorization", `Bearer ${accessToken}`);
    return fetch(path, { ...init, headers, credentials: "same-origin" });
  };
  let resp = await send();
  if (resp.status === 401 && (await refresh())) resp = await send();
  if (resp.status === 401) {
    end();
    onSignedOut();
  }
  return resp;
}
