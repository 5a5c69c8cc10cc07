// decode.mjs - decodes Siphon's Kafka messages with avsc, an Avro implementation that shares
// no code with Siphon, using only the published schemas (tests/it/0302-interop-avsc.c runs it).
//
//   node decode.mjs --in messages.jsonl --out decoded.jsonl
//                   [--schemas fingerprints.json] [--registry http://host:port]
//
// Input: one JSON object per line, {"framing": "soe" | "confluent", "topic": ...,
// "key": base64 | null, "value": base64 | null}.
//  - soe: C3 01 + the 8-byte little-endian CRC-64-AVRO fingerprint; the schema is looked up in
//    --schemas (an object fingerprint-hex -> schema text, built from Siphon's schema history
//    and the fixed schemas it publishes: avsc cannot compute Rabin fingerprints itself).
//  - confluent: magic byte 0 + the 4-byte big-endian id; the schema is fetched from the Schema
//    Registry at --registry with GET /schemas/ids/{id}, as Confluent's deserializers do.
// Output: one line per input line, {"key": ..., "value": ...} (null where absent), or
// {"error": "..."}. Values are rendered the way Siphon's own decoder renders them, so the two
// can be compared as JSON: logical types through avsc's LogicalType hooks (decimal bytes ->
// "123.45", date -> "YYYY-MM-DD", timestamp-micros -> "...T..:..:...ffffffZ"), bytes as
// "\x" + hex, unions as the value of their branch.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const avro = require('avsc');

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));

function pad(n, w) { return String(n).padStart(w, '0'); }

class DecimalType extends avro.types.LogicalType {
  constructor(schema, opts) {
    super(schema, opts);
    this._scale = schema.scale || 0;
  }
  _fromValue(buf) {
    // two's-complement big-endian unscaled integer
    let v = 0n;
    for (const b of buf) v = (v << 8n) | BigInt(b);
    if (buf.length && buf[0] & 0x80) v -= 1n << BigInt(8 * buf.length);
    const neg = v < 0n;
    let digits = (neg ? -v : v).toString();
    if (this._scale > 0) {
      digits = digits.padStart(this._scale + 1, '0');
      digits = digits.slice(0, -this._scale) + '.' + digits.slice(-this._scale);
    }
    return (neg ? '-' : '') + digits;
  }
  _toValue() { throw new Error('decode only'); }
  _resolve(type) { return type.typeName === this.underlyingType.typeName ? (x) => x : undefined; }
}

class DateType extends avro.types.LogicalType {
  _fromValue(days) { return new Date(days * 86400000).toISOString().slice(0, 10); }
  _toValue() { throw new Error('decode only'); }
  _resolve() { return undefined; }
}

function isoMicros(us, utc) {
  const ms = Math.floor(us / 1000);
  const micros = us - ms * 1000;
  const iso = new Date(ms).toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  return iso.slice(0, 23) + pad(micros, 3) + (utc ? 'Z' : '');
}

class TimestampMicros extends avro.types.LogicalType {
  _fromValue(us) { return isoMicros(us, true); }
  _toValue() { throw new Error('decode only'); }
  _resolve() { return undefined; }
}
class LocalTimestampMicros extends avro.types.LogicalType {
  _fromValue(us) { return isoMicros(us, false); }
  _toValue() { throw new Error('decode only'); }
  _resolve() { return undefined; }
}
class TimestampMillis extends avro.types.LogicalType {
  _fromValue(ms) { return new Date(ms).toISOString(); }
  _toValue() { throw new Error('decode only'); }
  _resolve() { return undefined; }
}
class TimeMicros extends avro.types.LogicalType {
  _fromValue(us) {
    const s = Math.floor(us / 1e6), f = us - s * 1e6;
    return `${pad(Math.floor(s / 3600), 2)}:${pad(Math.floor(s / 60) % 60, 2)}:${pad(s % 60, 2)}.${pad(f, 6)}`;
  }
  _toValue() { throw new Error('decode only'); }
  _resolve() { return undefined; }
}

const typeOpts = {
  wrapUnions: 'never',
  logicalTypes: {
    decimal: DecimalType,
    date: DateType,
    'timestamp-micros': TimestampMicros,
    'local-timestamp-micros': LocalTimestampMicros,
    'timestamp-millis': TimestampMillis,
    'time-micros': TimeMicros,
  },
};

const byFingerprint = args.schemas ? JSON.parse(readFileSync(args.schemas, 'utf8')) : {};
const typeCache = new Map();
function typeOf(schemaText) {
  if (!typeCache.has(schemaText)) typeCache.set(schemaText, avro.Type.forSchema(JSON.parse(schemaText), { ...typeOpts }));
  return typeCache.get(schemaText);
}

const idCache = new Map();
async function schemaById(id) {
  if (!idCache.has(id)) {
    const res = await fetch(`${args.registry}/schemas/ids/${id}`, {
      headers: { Accept: 'application/vnd.schemaregistry.v1+json' },
    });
    if (res.status !== 200) throw new Error(`registry answered ${res.status} for id ${id}`);
    idCache.set(id, (await res.json()).schema);
  }
  return idCache.get(id);
}

async function decodePart(framing, b64) {
  if (b64 === null) return null;
  const buf = Buffer.from(b64, 'base64');
  let schema, body;
  if (framing === 'soe') {
    if (buf.length < 10 || buf[0] !== 0xc3 || buf[1] !== 0x01) throw new Error('not single-object encoded');
    const fp = buf.readBigUInt64LE(2).toString(16).padStart(16, '0');
    schema = byFingerprint[fp];
    if (!schema) throw new Error(`no published schema has fingerprint ${fp}`);
    body = buf.subarray(10);
  } else {
    if (buf.length < 5 || buf[0] !== 0) throw new Error('no Confluent magic byte');
    schema = await schemaById(buf.readUInt32BE(1));
    body = buf.subarray(5);
  }
  return typeOf(schema).fromBuffer(body); // throws unless the body is consumed exactly
}

function replacer(k, v) {
  if (v && v.type === 'Buffer' && Array.isArray(v.data)) return '\\x' + Buffer.from(v.data).toString('hex');
  if (typeof v === 'bigint') return Number(v);
  return v;
}

const out = [];
for (const line of readFileSync(args.in, 'utf8').split('\n')) {
  if (!line) continue;
  const m = JSON.parse(line);
  try {
    const key = await decodePart(m.framing, m.key);
    const value = await decodePart(m.framing, m.value);
    out.push(JSON.stringify({ key, value }, replacer));
  } catch (e) {
    out.push(JSON.stringify({ error: `${m.topic}: ${e.message}` }));
  }
}
writeFileSync(args.out, out.join('\n') + '\n');
