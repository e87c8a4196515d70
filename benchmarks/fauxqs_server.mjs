// fauxqs on 127.0.0.1 only: its own command listens on every interface, so the listen call is pinned to
// loopback before the server starts. Usage: node fauxqs_server.mjs PORT REGION. Prints "Ready.", stops on SIGTERM.
import net from "node:net";

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "object" && args[0] !== null) return listen.call(this, { ...args[0], host: "127.0.0.1" });
  if (typeof args[0] === "number") return listen.call(this, args[0], "127.0.0.1", ...args.slice(2).filter((a) => typeof a === "function"));
  return listen.apply(this, args);
};

const { startFauxqs } = await import("fauxqs");
const server = await startFauxqs({ port: Number(process.argv[2]), defaultRegion: process.argv[3], logger: false });
console.log("Ready.");
process.on("SIGTERM", async () => {
  await server.stop();
  process.exit(0);
});
