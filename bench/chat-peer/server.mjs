// The contract's chat on a plain Socket.IO 4 server (no auth, no limits, no history): the
// baseline bench/chat.sh measures console-api against. Usage: node server.mjs <port>
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
import { Server } from "socket.io";

const port = Number(process.argv[2]);
const http = createServer();
const io = new Server(http, { serveClient: false });
io.on("connection", (socket) => {
  socket.join("general");
  socket.on("joinRoom", ({ room }) => socket.join(room));
  socket.on("message", ({ room, content }) => {
    io.to(room).emit("message", {
      id: randomUUID(),
      room,
      userId: "peer",
      displayName: "Peer",
      content,
      timestamp: new Date().toISOString(),
    });
  });
});
http.listen(port, "127.0.0.1");
