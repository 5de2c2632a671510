// Watches Luach's live namespace with the official socket.io-client.
// usage: LUACH_TOKEN=… node live_watch.mjs BASE_URL DEVICE_ID [jobs]
// Authenticates the handshake with LUACH_TOKEN. Prints "ready" once connected (or
// "refused: MESSAGE" and exits 2 when the server refuses the handshake), then "online" / "metrics" /
// "offline: REASON" lines for DEVICE_ID;
// exits 0 after it has seen online then offline, 1 on timeout or error. When the server ends
// the connection it prints "disconnected: REASON" and exits 3.
// With "jobs" it prints instead "execution: STATE" for each `job:execution` event of DEVICE_ID
// and exits 0 after the first final state.
// With "progress" DEVICE_ID names a job instead: it prints "progress: STATE" for each
// `job:progress` event of that job and runs until it is killed.
import { io } from "socket.io-client";

const [base, device, mode] = process.argv.slice(2);
const seen = new Set();
const auth = process.env.LUACH_TOKEN ? { token: process.env.LUACH_TOKEN } : undefined;
const socket = io(`${base}/live`, { transports: ["websocket"], reconnection: false, auth });
const fail = (why) => {
  console.error(why);
  process.exit(1);
};
const timer = setTimeout(() => fail(`timed out; saw ${[...seen].join(",") || "nothing"}`), mode ? 300_000 : 90_000);

socket.on("connect", () => console.log("ready"));
socket.on("disconnect", (reason) => {
  if (reason === "io client disconnect") return;
  console.log(`disconnected: ${reason}`);
  process.exit(3);
});
socket.on("connect_error", (err) => {
  console.log(`refused: ${err.message}`);
  process.exit(2);
});
const FINAL = new Set(["succeeded", "failed", "timed_out", "cancelled", "skipped"]);
if (mode === "jobs") {
  socket.on("job:execution", (event) => {
    if (event.device_id !== device) return;
    if (typeof event.tenant_id !== "string" || typeof event.job_id !== "string") fail(`bad event ${JSON.stringify(event)}`);
    console.log(`execution: ${event.state}`);
    if (FINAL.has(event.state)) {
      clearTimeout(timer);
      socket.close();
      process.exit(0);
    }
  });
}
if (mode === "progress") {
  socket.on("job:progress", (event) => {
    if (event.id !== device) return;
    if (typeof event.tenant_id !== "string" || Number.isNaN(Date.parse(event.updated_at))) fail(`bad event ${JSON.stringify(event)}`);
    console.log(`progress: ${event.state}`);
  });
}
for (const kind of mode ? [] : ["online", "metrics", "offline"]) {
  socket.on(`device:${kind}`, (event) => {
    if (event.device_id !== device) return;
    if (typeof event.tenant_id !== "string" || typeof event.at !== "string") fail(`bad event ${JSON.stringify(event)}`);
    if (!seen.has(kind)) console.log(kind === "offline" ? `offline: ${event.reason}` : kind);
    seen.add(kind);
    if (kind === "offline" && seen.has("online")) {
      clearTimeout(timer);
      socket.close();
      process.exit(0);
    }
  });
}
