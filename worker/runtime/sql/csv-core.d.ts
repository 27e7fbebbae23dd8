/** Types of csv-core.js (plain JavaScript shared with the sandbox thread); documentation is in that file. */
export type ColumnType = "INTEGER" | "REAL" | "TEXT";
export type CsvValue = null | number | bigint | string;
export interface CsvColumn {
  name: string;
  type: ColumnType;
}
export interface CsvTable {
  columns: CsvColumn[];
  rows: CsvValue[][];
}

export declare const MAX_COLUMNS: number;
export declare class CsvError extends Error {
  /** 1-based line of the offending record, when there is one */
  readonly line: number | undefined;
  constructor(message: string, line: number | undefined);
}
export declare function decodeCsv(bytes: Uint8Array): string;
export declare function parseCsvRecords(text: string): { records: string[][]; lines: number[] };
export declare function inferColumnType(values: string[]): ColumnType;
export declare function convertValue(raw: string, type: ColumnType): CsvValue;
export declare function checkHeader(names: string[]): void;
export declare function readCsv(input: Uint8Array | string): CsvTable;
export declare function quoteIdentifier(name: string): string;
export declare function createTableSql(table: string, columns: CsvColumn[]): string;
export declare function insertSql(table: string, width: number): string;
