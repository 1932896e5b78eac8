// Writes a 1600 x 1250 (2 MP) JPEG with photo-like detail (gradients and noise) and an EXIF
// orientation, so both pipelines decode, turn, re-encode and thumbnail the same work.
// Usage: node make-photo.mjs <path>
import sharp from "sharp";

const [path] = process.argv.slice(2);
const width = 1600;
const height = 1250;
const pixels = Buffer.alloc(width * height * 3);
let seed = 42;
const noise = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 48) - 24;
for (let y = 0; y < height; y++) {
  for (let x = 0; x < width; x++) {
    const i = (y * width + x) * 3;
    pixels[i] = Math.max(0, Math.min(255, (x * 255) / width + noise()));
    pixels[i + 1] = Math.max(0, Math.min(255, (y * 255) / height + noise()));
    pixels[i + 2] = Math.max(0, Math.min(255, 128 + 100 * Math.sin((x + y) / 40) + noise()));
  }
}
await sharp(pixels, { raw: { width, height, channels: 3 } })
  .withMetadata({ orientation: 6 })
  .jpeg({ quality: 90 })
  .toFile(path);
