// A socket.io-client front end, driven by crates/app/tests/chat_socketio.rs. Prints one JSON
// line per step; reads nothing. Usage: node client.mjs <base url> <token> <transports>
import { io } from "socket.io-client";

const [base, token, transports] = process.argv.slice(2);
const say = (line) => console.log(JSON.stringify(line));
const socket = io(base, {
  auth: { token },
  transports: transports.split(","),
  reconnection: false,
  timeout: 5000,
});
const fail = (why) => {
  say({ step: "failed", why: String(why) });
  process.exit(1);
};
setTimeout(() => fail("timed out"), 15000);

socket.on("connect_error", (error) => {
  say({ step: "connect_error", message: error.message });
  process.exit(0);
});
socket.on("connected", async (data) => {
  say({ step: "connected", data, transport: socket.io.engine.transport.name });
  const joined = await socket.emitWithAck("joinRoom", { room: "team" });
  say({ step: "joined", ack: joined });
});
socket.on("message", async (message) => {
  if (message.content === "from socket.io") return;
  say({ step: "received", message, transport: socket.io.engine.transport.name });
  const sent = await socket.emitWithAck("message", { room: "team", content: "from socket.io" });
  const history = await socket.emitWithAck("history", { room: "team", limit: 5 });
  const refused = await socket.emitWithAck("message", { room: "elsewhere", content: "x" });
  say({ step: "sent", ack: sent, history, refused });
  socket.disconnect();
  process.exit(0);
});
