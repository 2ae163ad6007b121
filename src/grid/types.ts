/** The grid stage's own error: the place a user must edit. (The grid's value types live in src/core/types.ts.) */
/** A grid or input error, pointing at the place a user must edit. */
export class GridError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | null,
    readonly key: string,
    readonly problem: string,
  ) {
    super(`${file}${line !== null ? `:${line}` : ""}: ${key ? `${key}: ` : ""}${problem}`);
    this.name = "GridError";
  }
}
