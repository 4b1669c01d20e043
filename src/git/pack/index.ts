export { applyDelta, createDelta, type DeltaHeader, MAX_DELTA_RESULT, readDeltaHeader } from "./delta";
export {
  crc32,
  deflate,
  type EntryBase,
  type EntryHeader,
  encodeEntryHeader,
  encodeObjectEntry,
  encodeOfsDistance,
  type Inflated,
  inflateAt,
  MAX_ENTRY_SIZE,
  readEntryHeader,
  TruncatedInflateError,
} from "./entry";
export { type IndexEntry, PackIndex, readPackIndex, writePackIndex } from "./index-file";
export {
  type ExternalBase,
  type GitObject,
  type IndexedPack,
  type IndexPackOptions,
  indexPack,
  PACK_HEADER_SIZE,
  PACK_SIGNATURE,
  PACK_TRAILER_SIZE,
  type PackEntryInfo,
  readPackHeader,
} from "./reader";
export { completeThinPack } from "./thin";
export {
  type PackWriterInput,
  type PackWriterOptions,
  type RangeReader,
  type ReadEntryOptions,
  readEntryAt,
  readObjectAt,
  rewriteOfsDelta,
  type StoredEntry,
  type WrittenEntry,
  writePack,
} from "./writer";
