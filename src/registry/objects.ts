// Small JSON documents in the store (indexes, links, tags, upload state).
import { Buffer } from 'node:buffer';
import type { ObjectReader, ObjectWriter, OpOptions } from '../storage/driver.js';
import { isNotFound } from '../storage/errors.js';
import { readAll } from '../storage/streams.js';

export { readAll };

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
