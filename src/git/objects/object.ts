import { createHash } from "node:crypto";
import { bytesToHex } from "../../lib/hex";
import { GitFormatError } from "./errors";
import { isOid, OID_BYTES, oidToBytes } from "./oid";

export type ObjectType = "commit" | "tree" | "blob" | "tag";

/** Type codes of pack entries (gitformat-pack). 5 is reserved; 6 and 7 are deltas against a base. */
export const PackObjectCode = { commit: 1, tree: 2, blob: 3, tag: 4 } as const satisfies Record<ObjectType, number>;
export const OFS_DELTA = 6;
export const REF_DELTA = 7;

const typesByCode: Record<number, ObjectType> = { 1: "commit", 2: "tree", 3: "blob", 4: "tag" };

/** The object type of a non-delta pack type code, or undefined for deltas and invalid codes. */
export function objectTypeFromCode(code: number): ObjectType | undefined {
  return typesByCode[code];
}

export function isObjectType(value: string): value is ObjectType {
  return value === "commit" || value === "tree" || value === "blob" || value === "tag";
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Bodies up to this size are hashed in one update together with their header (a push hashes every object). */
const SMALL_BODY = 4096;
/** Header and small body, side by side; the longest header is "commit " + 16 digits + NUL. */
const hashInput = new Uint8Array(32 + SMALL_BODY);
const typeBytes: Record<ObjectType, Uint8Array> = {
  commit: encoder.encode("commit "),
  tree: encoder.encode("tree "),
  blob: encoder.encode("blob "),
  tag: encoder.encode("tag "),
};

/** Writes `"<type> <len>\0"` at the start of `hashInput`; returns its length. */
function writeHeader(type: ObjectType, length: number): number {
  const prefix = typeBytes[type];
  hashInput.set(prefix);
  const digits = String(length);
  let at = prefix.length;
  for (let i = 0; i < digits.length; i++) hashInput[at++] = digits.charCodeAt(i);
  hashInput[at++] = 0;
  return at;
}

/** Hex SHA-1 object id of `<type> <len>\0<body>`. */
export function hashObject(type: ObjectType, body: Uint8Array): string {
  const headerLength = writeHeader(type, body.length);
  const hash = createHash("sha1");
  if (body.length <= SMALL_BODY) {
    hashInput.set(body, headerLength);
    return hash.update(hashInput.subarray(0, headerLength + body.length)).digest("hex");
  }
  return hash.update(hashInput.subarray(0, headerLength)).update(body).digest("hex");
}

// ---------------------------------------------------------------------------------------------------------
// Identities (author, committer, tagger)

export interface GitIdentity {
  name: string;
  email: string;
  /** Seconds since the epoch. */
  timestamp: number;
  /** As written, e.g. "+0100" or "-0230". */
  timezone: string;
}

const TIMEZONE = /^[+-]\d{4}$/;

function parseIdentity(line: string, what: string): GitIdentity {
  const open = line.indexOf("<");
  const close = line.indexOf(">", open + 1);
  if (open < 0 || close < 0) throw new GitFormatError(`${what}: malformed identity ${JSON.stringify(line)}`);
  const name = line.slice(0, open).replace(/ $/, "");
  const email = line.slice(open + 1, close);
  if (name.includes(">") || email.includes("<")) {
    throw new GitFormatError(`${what}: malformed identity ${JSON.stringify(line)}`);
  }
  const match = /^ (\d{1,16}) ([+-]\d{4})$/.exec(line.slice(close + 1));
  if (!match?.[1] || !match[2]) {
    throw new GitFormatError(`${what}: malformed identity date in ${JSON.stringify(line)}`);
  }
  return { name, email, timestamp: Number(match[1]), timezone: match[2] };
}

function formatIdentity(identity: GitIdentity, what: string): string {
  const { name, email, timestamp, timezone } = identity;
  if (/[<>\n]/.test(name) || /[<>\n]/.test(email)) {
    throw new GitFormatError(`${what}: name and email must not contain '<', '>' or newlines`);
  }
  if (!Number.isSafeInteger(timestamp) || timestamp < 0 || !TIMEZONE.test(timezone)) {
    throw new GitFormatError(`${what}: invalid timestamp or timezone`);
  }
  return `${name} <${email}> ${timestamp} ${timezone}`;
}

// ---------------------------------------------------------------------------------------------------------
// Headers shared by commits and tags: "key value\n", continuation lines start with a space (gpgsig, mergetag).

export interface ExtraHeader {
  name: string;
  /** Multi-line values (signatures) are joined with "\n", without the continuation space. */
  value: string;
}

interface HeaderBlock {
  headers: ExtraHeader[];
  message: string;
}

function splitHeaders(body: Uint8Array, what: string): HeaderBlock {
  const text = decoder.decode(body);
  const end = text.startsWith("\n") ? 0 : text.indexOf("\n\n");
  const headerText = end < 0 ? text : text.slice(0, end);
  if (end < 0 && !text.endsWith("\n")) throw new GitFormatError(`${what}: headers are not terminated by a newline`);
  const message = end < 0 ? "" : text.slice(end === 0 ? 1 : end + 2);
  const headers: ExtraHeader[] = [];
  const lines = headerText.split("\n");
  if (end < 0) lines.pop();
  for (const line of lines) {
    if (line.startsWith(" ")) {
      const last = headers.at(-1);
      if (!last) throw new GitFormatError(`${what}: continuation line before any header`);
      last.value += `\n${line.slice(1)}`;
      continue;
    }
    const space = line.indexOf(" ");
    if (space <= 0) throw new GitFormatError(`${what}: malformed header line ${JSON.stringify(line.slice(0, 80))}`);
    headers.push({ name: line.slice(0, space), value: line.slice(space + 1) });
  }
  return { headers, message };
}

function formatHeader({ name, value }: ExtraHeader): string {
  if (!/^[^\s]+$/.test(name)) throw new GitFormatError(`invalid header name ${JSON.stringify(name)}`);
  return `${name} ${value.replaceAll("\n", "\n ")}\n`;
}

function takeHeader(block: HeaderBlock, name: string, what: string): string {
  const header = block.headers.shift();
  if (header?.name !== name) throw new GitFormatError(`${what}: expected a "${name}" header`);
  return header.value;
}

function takeOid(block: HeaderBlock, name: string, what: string): string {
  const value = takeHeader(block, name, what);
  if (!isOid(value)) throw new GitFormatError(`${what}: "${name}" is not an object id`);
  return value;
}

// ---------------------------------------------------------------------------------------------------------
// Commits

export interface Commit {
  tree: string;
  parents: string[];
  author: GitIdentity;
  committer: GitIdentity;
  /** Headers after committer, in order (encoding, gpgsig, mergetag…), kept so a commit re-serializes exactly. */
  extraHeaders: ExtraHeader[];
  message: string;
}

export function parseCommit(body: Uint8Array): Commit {
  const what = "commit";
  const block = splitHeaders(body, what);
  const tree = takeOid(block, "tree", what);
  const parents: string[] = [];
  while (block.headers[0]?.name === "parent") parents.push(takeOid(block, "parent", what));
  const author = parseIdentity(takeHeader(block, "author", what), `${what} author`);
  const committer = parseIdentity(takeHeader(block, "committer", what), `${what} committer`);
  return { tree, parents, author, committer, extraHeaders: block.headers, message: block.message };
}

export function serializeCommit(commit: Commit): Uint8Array {
  const what = "commit";
  for (const oid of [commit.tree, ...commit.parents]) {
    if (!isOid(oid)) throw new GitFormatError(`${what}: ${JSON.stringify(oid)} is not an object id`);
  }
  let text = `tree ${commit.tree}\n`;
  for (const parent of commit.parents) text += `parent ${parent}\n`;
  text += `author ${formatIdentity(commit.author, `${what} author`)}\n`;
  text += `committer ${formatIdentity(commit.committer, `${what} committer`)}\n`;
  for (const header of commit.extraHeaders) text += formatHeader(header);
  return encoder.encode(`${text}\n${commit.message}`);
}

// ---------------------------------------------------------------------------------------------------------
// Tags

export interface Tag {
  object: string;
  type: ObjectType;
  tag: string;
  /** Absent in some very old tags. */
  tagger?: GitIdentity;
  extraHeaders: ExtraHeader[];
  /** Includes any trailing PGP signature, as git stores it. */
  message: string;
}

export function parseTag(body: Uint8Array): Tag {
  const what = "tag";
  const block = splitHeaders(body, what);
  const object = takeOid(block, "object", what);
  const type = takeHeader(block, "type", what);
  if (!isObjectType(type)) throw new GitFormatError(`${what}: unknown object type ${JSON.stringify(type)}`);
  const tag = takeHeader(block, "tag", what);
  if (tag.length === 0) throw new GitFormatError(`${what}: empty tag name`);
  const tagger =
    block.headers[0]?.name === "tagger"
      ? parseIdentity(takeHeader(block, "tagger", what), `${what} tagger`)
      : undefined;
  return { object, type, tag, ...(tagger ? { tagger } : {}), extraHeaders: block.headers, message: block.message };
}

export function serializeTag(tag: Tag): Uint8Array {
  const what = "tag";
  if (!isOid(tag.object)) throw new GitFormatError(`${what}: object is not an object id`);
  if (!isObjectType(tag.type)) throw new GitFormatError(`${what}: unknown object type`);
  if (tag.tag.length === 0 || /\s/.test(tag.tag)) throw new GitFormatError(`${what}: invalid tag name`);
  let text = `object ${tag.object}\ntype ${tag.type}\ntag ${tag.tag}\n`;
  if (tag.tagger) text += `tagger ${formatIdentity(tag.tagger, `${what} tagger`)}\n`;
  for (const header of tag.extraHeaders) text += formatHeader(header);
  return encoder.encode(`${text}\n${tag.message}`);
}

// ---------------------------------------------------------------------------------------------------------
// Trees

export type TreeMode = "100644" | "100755" | "120000" | "40000" | "160000";

export interface TreeEntry {
  /** "100664" (old git's group-writable files) is accepted when parsing, never written. */
  mode: TreeMode | "100664";
  name: string;
  oid: string;
}

const CANONICAL_MODES: ReadonlySet<string> = new Set(["100644", "100755", "120000", "40000", "160000"]);
const ACCEPTED_MODES: ReadonlySet<string> = new Set([...CANONICAL_MODES, "100664"]);

/** Accepted modes by their octal value: a tree entry's mode is read from its bytes without a string. */
const MODE_BY_VALUE: ReadonlyMap<number, TreeEntry["mode"]> = new Map(
  [...ACCEPTED_MODES].map((mode) => [Number.parseInt(mode, 8), mode as TreeEntry["mode"]]),
);

/** The accepted mode written in body[from, to), or undefined (other digits, leading zeros, too long). */
function modeAt(body: Uint8Array, from: number, to: number): TreeEntry["mode"] | undefined {
  if (to - from > 6) return undefined;
  let value = 0;
  for (let i = from; i < to; i++) {
    const digit = (body[i] as number) - 0x30;
    if (digit < 0 || digit > 7) return undefined;
    value = value * 8 + digit;
  }
  const mode = MODE_BY_VALUE.get(value);
  return mode?.length === to - from ? mode : undefined;
}

/** A name's text: ASCII names (nearly all) without a trip through the decoder. */
function entryName(bytes: Uint8Array): string {
  for (let i = 0; i < bytes.length; i++) if ((bytes[i] as number) >= 0x80) return decoder.decode(bytes);
  return String.fromCharCode.apply(null, bytes as unknown as number[]);
}

/** The type of object a tree entry points at: "commit" for submodules (gitlinks). */
export function treeEntryType(mode: TreeEntry["mode"]): ObjectType {
  if (mode === "40000") return "tree";
  if (mode === "160000") return "commit";
  return "blob";
}

function checkEntryName(name: Uint8Array | string, what: string): void {
  const text = typeof name === "string" ? name : decoder.decode(name);
  if (text.length === 0) throw new GitFormatError(`${what}: empty entry name`);
  if (text.includes("/") || text.includes("\0")) throw new GitFormatError(`${what}: entry name contains '/' or NUL`);
  // "." and ".." break paths; ".git" in any case would overwrite the repository on checkout.
  if (text === "." || text === ".." || text.toLowerCase() === ".git") {
    throw new GitFormatError(`${what}: forbidden entry name ${JSON.stringify(text)}`);
  }
}

/**
 * git's tree order (base_name_compare): byte order of names, where a tree's name is compared as if it ended in
 * "/". So "a.b" < "a" (tree) < "a0", but "a" (blob) < "a.b".
 */
export function compareTreeNames(a: Uint8Array, aIsTree: boolean, b: Uint8Array, bIsTree: boolean): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const diff = (a[i] as number) - (b[i] as number);
    if (diff !== 0) return diff;
  }
  const ca = a.length > length ? (a[length] as number) : aIsTree ? 0x2f : 0;
  const cb = b.length > length ? (b[length] as number) : bIsTree ? 0x2f : 0;
  return ca - cb;
}

export function parseTree(body: Uint8Array): TreeEntry[] {
  const what = "tree";
  const entries: TreeEntry[] = [];
  const names = new Set<string>();
  let previous: { name: Uint8Array; isTree: boolean } | undefined;
  let pos = 0;
  // Every pushed tree goes through here: each entry's bytes are decoded once.
  while (pos < body.length) {
    const space = body.indexOf(0x20, pos);
    if (space < 0) throw new GitFormatError(`${what}: truncated entry mode`);
    const mode = modeAt(body, pos, space);
    if (!mode) {
      const shown = decoder.decode(body.subarray(pos, Math.min(space, pos + 10)));
      throw new GitFormatError(`${what}: invalid mode ${JSON.stringify(shown)}`);
    }
    const nul = body.indexOf(0, space + 1);
    if (nul < 0) throw new GitFormatError(`${what}: truncated entry name`);
    const nameBytes = body.subarray(space + 1, nul);
    const name = entryName(nameBytes);
    checkEntryName(name, what);
    if (nul + 1 + OID_BYTES > body.length) throw new GitFormatError(`${what}: truncated object id`);
    const oid = bytesToHex(body.subarray(nul + 1, nul + 1 + OID_BYTES));
    pos = nul + 1 + OID_BYTES;
    const isTree = mode === "40000";
    if (previous && compareTreeNames(previous.name, previous.isTree, nameBytes, isTree) >= 0) {
      throw new GitFormatError(`${what}: entries are not sorted or contain a duplicate`);
    }
    // A blob "a" and a tree "a" are not adjacent in tree order, so duplicates need their own check, on the
    // bytes: two different non-UTF-8 names decode to the same string (U+FFFD), valid UTF-8 never does.
    const key = name.includes("\uFFFD") ? `\0${String.fromCharCode(...nameBytes)}` : name;
    if (names.has(key)) throw new GitFormatError(`${what}: duplicate entry ${JSON.stringify(name)}`);
    names.add(key);
    previous = { name: nameBytes, isTree };
    entries.push({ mode, name, oid });
  }
  return entries;
}

/** Serializes entries in git's tree order (the input order does not matter). */
export function serializeTree(entries: readonly TreeEntry[]): Uint8Array {
  const what = "tree";
  const encoded = entries.map((entry) => {
    if (!CANONICAL_MODES.has(entry.mode)) throw new GitFormatError(`${what}: invalid mode ${entry.mode}`);
    checkEntryName(entry.name, what);
    return { entry, name: encoder.encode(entry.name), oid: oidToBytes(entry.oid), isTree: entry.mode === "40000" };
  });
  encoded.sort((a, b) => compareTreeNames(a.name, a.isTree, b.name, b.isTree));
  const names = new Set<string>();
  let size = 0;
  for (const { entry, name } of encoded) {
    if (names.has(entry.name)) throw new GitFormatError(`${what}: duplicate entry ${JSON.stringify(entry.name)}`);
    names.add(entry.name);
    size += entry.mode.length + 1 + name.length + 1 + OID_BYTES;
  }
  const out = new Uint8Array(size);
  let pos = 0;
  for (const { entry, name, oid } of encoded) {
    out.set(encoder.encode(`${entry.mode} `), pos);
    pos += entry.mode.length + 1;
    out.set(name, pos);
    pos += name.length + 1; // the NUL is already there
    out.set(oid, pos);
    pos += OID_BYTES;
  }
  return out;
}
