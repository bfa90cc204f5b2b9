/** The files a run left in out/, and whether some were left out for the cap. */
export interface OutFiles {
  files: Record<string, string>;
  truncated: boolean;
}

const BLOCK = 512;

/** A NUL-terminated ASCII field of a tar header. */
function field(header: Buffer, offset: number, length: number): string {
  const raw = header.subarray(offset, offset + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? raw.length : end).toString('utf8');
}

/**
 * Reads the tar (ustar, GNU or POSIX pax, as `tar -cf` writes) the run's wrapper made of out/. The
 * bytes come from inside the sandbox, so they are hostile: only regular files are kept, names are
 * plain keys (nothing reaches a disk), content stops at `cap` bytes in all, a size field that is not
 * plain octal ends the read, and whatever follows a malformed header is dropped, not guessed at.
 * A reader this small (names, sizes, type flags) needs no archive library.
 */
export function readOutFiles(tar: Buffer, cap: number, archiveTruncated: boolean): OutFiles | undefined {
  if (tar.length === 0) return undefined;
  const files = new Map<string, string>();
  let total = 0;
  let truncated = archiveTruncated;
  let longName: string | undefined;
  for (let at = 0; at + BLOCK <= tar.length; ) {
    const header = tar.subarray(at, at + BLOCK);
    if (header.every((b) => b === 0)) break; // the end-of-archive blocks
    const sizeField = field(header, 124, 12).trim();
    if (!/^[0-7]{1,11}$/.test(sizeField)) {
      truncated = true;
      break;
    }
    const size = Number.parseInt(sizeField, 8);
    const type = String.fromCharCode(header[156] ?? 0);
    const body = at + BLOCK;
    const next = body + Math.ceil(size / BLOCK) * BLOCK;
    if (body + size > tar.length) {
      truncated = true;
      break;
    }
    const content = tar.subarray(body, body + size);
    if (type === 'L') {
      // GNU long name: the next header's name.
      longName = content.toString('utf8').replace(/\0.*$/s, '');
    } else if (type === 'x') {
      // POSIX extended header: "<length> path=<name>\n" records; only the name matters here.
      longName = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(content.toString('utf8'))?.[1] ?? longName;
    } else if (type === 'g') {
      // A global extended header says nothing about any one file.
    } else {
      const ustar = field(header, 257, 6) === 'ustar';
      const prefix = ustar ? field(header, 345, 155) : '';
      const name = (longName ?? (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100)))
        .replace(/^(\.\/)+/, '')
        .replace(/\/+$/, '');
      longName = undefined;
      if ((type === '0' || type === '\0') && name && name !== '.') {
        if (total + size > cap) truncated = true;
        else {
          total += size;
          files.set(name, content.toString('utf8'));
        }
      }
    }
    at = next;
  }
  // fromEntries defines own properties, so a file named __proto__ is just a key.
  return { files: Object.fromEntries(files), truncated };
}
