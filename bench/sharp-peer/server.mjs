// The NestJS version's upload pipeline (multer in memory, then sharp) reduced to what
// console-api does per picture: auto-orient, re-encode as JPEG q85 without metadata (sharp's
// default), a 320 px thumbnail, both written to disk under a content-hash name.
// Usage: node server.mjs <port> <directory>
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import sharp from "sharp";

const [port, directory] = process.argv.slice(2);
await mkdir(directory, { recursive: true });

async function handle(request, response) {
  const form = await new Request("http://peer" + request.url, {
    method: request.method,
    headers: request.headers,
    body: request,
    duplex: "half",
  }).formData();
  const file = form.get("file");
  const input = Buffer.from(await file.arrayBuffer());
  const image = sharp(input, { limitInputPixels: 25_000_000 }).rotate();
  const { data, info } = await image
    .clone()
    .resize(2560, 2560, { fit: "inside", withoutEnlargement: true })
    .jpeg({ quality: 85 })
    .toBuffer({ resolveWithObject: true });
  const thumbnail = await image
    .clone()
    .resize(320, 320, { fit: "inside", withoutEnlargement: true })
    .jpeg({ quality: 85 })
    .toBuffer();
  const name = createHash("sha256").update(data).digest("hex").slice(0, 32);
  await writeFile(join(directory, `${name}-thumb.jpg`), thumbnail);
  await writeFile(join(directory, `${name}.jpg`), data);
  response.writeHead(201, { "content-type": "application/json" });
  response.end(JSON.stringify({ success: true, data: { url: `/uploads/${name}.jpg`, size: data.length, width: info.width, height: info.height } }));
}

createServer((request, response) => {
  handle(request, response).catch((error) => {
    response.writeHead(500, { "content-type": "application/json" });
    response.end(JSON.stringify({ success: false, message: String(error) }));
  });
}).listen(Number(port), "127.0.0.1");
