// Single-thread encode throughput of @huggingface/tokenizers (the pure-JS Hugging Face tokenizer) on a corpus,
// line by line, the peer of Spark.Benchmarks' `tokenize` suite. Usage:
//   node tokenize_bench.mjs TOKENIZER_DIR CORPUS_FILE ROUNDS
// Prints one JSON object.
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Tokenizer } from "@huggingface/tokenizers";

const [dir, corpusPath, roundsArg] = process.argv.slice(2);
const rounds = Number(roundsArg ?? 3);

const t0 = performance.now();
const tokenizerJson = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"));
const configPath = join(dir, "tokenizer_config.json");
const tokenizerConfig = existsSync(configPath) ? JSON.parse(readFileSync(configPath, "utf8")) : {};
const tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
const loadMs = performance.now() - t0;

const lines = readFileSync(corpusPath, "utf8").split("\n");
const bytes = Buffer.byteLength(lines.join("\n"), "utf8");

for (let i = 0; i < Math.min(2000, lines.length); i++) tokenizer.encode(lines[i], { add_special_tokens: false });

const times = [];
let tokens = 0;
for (let r = 0; r < rounds; r++) {
  tokens = 0;
  const start = performance.now();
  for (const line of lines) tokens += tokenizer.encode(line, { add_special_tokens: false }).ids.length;
  times.push(performance.now() - start);
}
times.sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)];
console.log(JSON.stringify({
  implementation: "@huggingface/tokenizers " + JSON.parse(readFileSync(new URL("../.node/node_modules/@huggingface/tokenizers/package.json", import.meta.url), "utf8")).version + " on node " + process.version,
  load_ms: Math.round(loadMs * 10) / 10,
  corpus_bytes: bytes,
  lines: lines.length,
  tokens,
  median_ms: Math.round(median * 10) / 10,
  mb_per_s: Math.round((bytes / 1e6) / (median / 1000) * 1000) / 1000,
  runs: times.length,
}));
