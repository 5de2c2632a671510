// Watches Luach's live namespace with the official socket.io-client.
// usage: node live_watch.mjs BASE_URL DEVICE_ID
// Prints "ready" once connected, then "online" / "metrics" / "offline" lines for DEVICE_ID;
// exits 0 after it has seen online then offline, 1 on timeout or error.
import { io } from "socket.io-client";

const [base, device] = process.argv.slice(2);
const seen = new Set();
const socket = io(`${base}/live`, { transports: ["websocket"], reconnection: false });
const fail = (why) => {
  console.error(why);
  process.exit(1);
};
const timer = setTimeout(() => fail(`timed out; saw ${[...seen].join(",") || "nothing"}`), 90_000);

socket.on("connect", () => console.log("ready"));
socket.on("connect_error", (err) => fail(`connect_error: ${err.message}`));
for (const kind of ["online", "metrics", "offline"]) {
  socket.on(`device:${kind}`, (event) => {
    if (event.device_id !== device) return;
    if (typeof event.tenant_id !== "string" || typeof event.at !== "string") fail(`bad event ${JSON.stringify(event)}`);
    if (!seen.has(kind)) console.log(kind);
    seen.add(kind);
    if (kind === "offline" && seen.has("online")) {
      clearTimeout(timer);
      socket.close();
      process.exit(0);
    }
  });
}
