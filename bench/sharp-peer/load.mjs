// Posts one JPEG as multipart `file` `total` times with `concurrency` requests in flight and
// prints "<images/s> <failures>". Usage: node load.mjs <url> <token|-> <file> <total> <concurrency>
import { readFile } from "node:fs/promises";

const [url, token, path, total, concurrency] = process.argv.slice(2);
const bytes = await readFile(path);
let next = 0;
let failures = 0;

async function worker() {
  while (next < Number(total)) {
    next += 1;
    const form = new FormData();
    form.append("file", new Blob([bytes], { type: "image/jpeg" }), "photo.jpg");
    const headers = token === "-" ? {} : { authorization: `Bearer ${token}` };
    const response = await fetch(url, { method: "POST", body: form, headers });
    await response.arrayBuffer();
    if (response.status !== 201) failures += 1;
  }
}

const started = process.hrtime.bigint();
await Promise.all(Array.from({ length: Number(concurrency) }, worker));
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
console.log(`${(Number(total) / seconds).toFixed(1)} ${failures}`);
