// The collector's bounded parallelism lives in the registry layer (manifest checks use it too).
export { STORE_PARALLELISM, forEachLimit } from '../registry/concurrency.js';
