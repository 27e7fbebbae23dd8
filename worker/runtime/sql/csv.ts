/**
 * CSV datasets of the `sql` runtime, for TypeScript callers. The logic lives in csv-core.js, plain JavaScript that
 * the sandbox thread requires directly, so the parser and the type rules exist once; this module gives it types.
 * See csv-core.js for the format and the column type rules.
 */
export {
  MAX_COLUMNS,
  CsvError,
  decodeCsv,
  parseCsvRecords,
  inferColumnType,
  convertValue,
  checkHeader,
  readCsv,
  quoteIdentifier,
  createTableSql,
  insertSql,
} from "./csv-core";
export type { ColumnType, CsvValue, CsvColumn, CsvTable } from "./csv-core";
