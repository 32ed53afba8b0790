// Small JSON documents in the store (indexes, links, tags, upload state).
import { Buffer } from 'node:buffer';
import type { Readable } from 'node:stream';
import type { ObjectReader, ObjectWriter, OpOptions } from '../storage/driver.js';
import { isNotFound } from '../storage/errors.js';

export async function readAll(stream: Readable, limit = Number.POSITIVE_INFINITY): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      stream.destroy();
      throw new RangeError(`body exceeds ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}

export async function readBytes(store: ObjectReader, key: string, options?: OpOptions): Promise<Buffer | undefined> {
  try {
    return await readAll(await store.get(key, undefined, options));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export async function readJson<T>(store: ObjectReader, key: string, options?: OpOptions): Promise<T | undefined> {
  const bytes = await readBytes(store, key, options);
  return bytes === undefined ? undefined : (JSON.parse(bytes.toString('utf8')) as T);
}

export async function writeJson(store: ObjectWriter, key: string, value: unknown, options?: OpOptions): Promise<void> {
  await store.put(key, Buffer.from(JSON.stringify(value)), options);
}
